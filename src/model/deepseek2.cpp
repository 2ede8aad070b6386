#include "model/deepseek2.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "base/format.h"
#include "base/log.h"
#include "cpu/cpu_backend.h"

namespace onecard::model {

struct DeepSeek2::Buffers {
  // Per token of a step: the residual stream and what each stage makes of it.
  std::vector<float> h, xn, qa, q, kv, attn, tmp, gate, up, router, moe_out, rows;
  std::vector<int32_t> ids;
  std::vector<float> weights;
  backend::MlaShape mla{};
  backend::RopeConfig rope;
  backend::RoutingConfig routing;
  // Only with an activation observer: each token's o_lat per head (split layouts), the head of each
  // (token, head) row, the expert of each (token, slot) pair in the MoE's expert order.
  std::vector<float> olat;
  std::vector<int32_t> head_of, pair_expert;
};

namespace {

template <class T>
void grow(std::vector<T>& v, size_t n) {
  v.assign(n, T{});
}

backend::RoutingConfig routing_config(const HParams& hp) {
  backend::RoutingConfig c;
  c.n_expert = static_cast<int>(hp.n_expert);
  c.k = static_cast<int>(hp.n_expert_used);
  c.n_group = static_cast<int>(hp.n_group);
  c.n_group_used = static_cast<int>(hp.n_group_used);
  c.gating = hp.gating;
  c.normalize = hp.expert_weights_norm;
  c.scale = hp.expert_weights_scale;
  return c;
}

backend::RopeConfig rope_config(const HParams& hp) {
  backend::RopeConfig r;
  r.dims = static_cast<int>(hp.qk_rope);
  r.base = hp.rope_freq_base;
  if (hp.yarn.enabled) {
    r.factor = hp.yarn.factor;
    r.original_context = static_cast<int>(hp.yarn.original_context);
    r.beta_fast = hp.yarn.beta_fast;
    r.beta_slow = hp.yarn.beta_slow;
  }
  return r;
}

}  // namespace

DeepSeek2::DeepSeek2(gguf::File file, HParams hp, Weights w, const LoadOptions& o)
    : file_(std::move(file)),
      hp_(std::move(hp)),
      w_(std::move(w)),
      n_ctx_(o.n_ctx),
      cpu_(std::make_unique<cpu::CpuBackend>(make_thread_pool(o.n_threads, o.placement),
                                             cpu::CpuBackendOptions{.repack_experts = o.repack_experts})),
      n_batch_(o.n_batch),
      attention_mode_(o.attention),
      buf_(std::make_unique<Buffers>()) {
  const size_t nb = static_cast<size_t>(n_batch_);
  const size_t d = hp_.n_embd, H = hp_.n_head, qkd = hp_.qk_head_dim(), width = hp_.kv_cache_width();
  const size_t ff = std::max<size_t>(hp_.n_ff, size_t{hp_.n_ff_exp} * hp_.n_expert_shared);
  Buffers& b = *buf_;
  grow(b.h, nb * d);
  grow(b.xn, nb * d);
  grow(b.qa, nb * hp_.q_lora_rank);
  grow(b.q, nb * H * qkd);
  grow(b.kv, nb * width);
  grow(b.attn, nb * H * hp_.v_head);
  grow(b.tmp, nb * d);
  grow(b.gate, nb * ff);
  grow(b.up, nb * ff);
  grow(b.router, nb * hp_.n_expert);
  grow(b.moe_out, nb * d);
  grow(b.rows, nb * d);
  grow(b.ids, nb * hp_.n_expert_used);
  grow(b.weights, nb * hp_.n_expert_used);
  b.mla = backend::MlaShape{static_cast<int64_t>(H), hp_.qk_nope, hp_.qk_rope,
                            hp_.kv_lora_rank,        hp_.v_head,  static_cast<int64_t>(width),
                            hp_.attention_scale()};
  b.rope = rope_config(hp_);
  if (hp_.n_expert > 0) b.routing = routing_config(hp_);
}

DeepSeek2::~DeepSeek2() = default;

int DeepSeek2::n_threads() const {
  return cpu_->pool().size();
}

Result<std::unique_ptr<DeepSeek2>> DeepSeek2::load(const std::string& path, const LoadOptions& options) {
  if (options.n_ctx <= 0 || options.n_batch <= 0) {
    return make_error("context ({}) and batch ({}) must be positive", options.n_ctx, options.n_batch);
  }
  ONECARD_ASSIGN_OR_RETURN(gguf::File file, gguf::File::open(path));
  ONECARD_ASSIGN_OR_RETURN(HParams hp, read_hparams(file));
  ONECARD_ASSIGN_OR_RETURN(Weights w, bind_weights(file, hp));
  LoadOptions o = options;
  if (hp.n_ctx_train > 0 && static_cast<uint32_t>(o.n_ctx) > hp.n_ctx_train) {
    log::warn("context {} exceeds the model's training context {}; using {}", o.n_ctx, hp.n_ctx_train,
              hp.n_ctx_train);
    o.n_ctx = static_cast<int>(hp.n_ctx_train);
  }
  auto model = std::unique_ptr<DeepSeek2>(new DeepSeek2(std::move(file), std::move(hp), std::move(w), o));
  std::vector<std::span<const uint8_t>> experts;
  for (const gguf::TensorInfo& t : model->file_.tensors()) {
    if (t.name.find("_exps") != std::string_view::npos) experts.push_back(t.bytes());
  }
  ONECARD_TRY(place_weights(model->file_.bytes(), experts, model->cpu_->pool(), o.placement, path));
  std::vector<backend::ExpertTensors*> moe_layers;
  std::vector<backend::LatentProjections*> latent;
  for (uint32_t il = 0; il < model->w_.layers.size(); ++il) {
    LayerWeights& l = model->w_.layers[il];
    if (model->hp_.is_moe_layer(il)) moe_layers.push_back(&l.experts);
    latent.push_back(&l.latent);
  }
  model->cpu_->prepare_experts(moe_layers);
  model->cpu_->prepare_latent(latent);
  log::info("{}: {} layers, context {} tokens", path, model->hp_.n_layer_decode(), model->n_ctx());
  return model;
}

void DeepSeek2::set_observer(ActivationObserver* observer) {
  observer_ = observer;
  if (observer == nullptr) return;
  Buffers& b = *buf_;
  const size_t nb = static_cast<size_t>(n_batch_), H = hp_.n_head;
  if (hp_.layout == MlaLayout::kSplit) grow(b.olat, nb * H * hp_.kv_lora_rank);
  b.head_of.resize(nb * H);
  for (size_t i = 0; i < b.head_of.size(); ++i) b.head_of[i] = static_cast<int32_t>(i % H);
  grow(b.pair_expert, nb * hp_.n_expert_used);
}

void DeepSeek2::observe(int il, const char* weight, const float* x, int64_t rows, int64_t cols,
                        int64_t stride, int64_t n_mat, const int32_t* mats, int mats_per_row) {
  const std::string name = il < 0 ? std::string(weight) : fmt::format("blk.{}.{}.weight", il, weight);
  observer_->observe({name, n_mat, x, rows, cols, stride, mats, mats_per_row});
}

uint64_t DeepSeek2::repacked_bytes() const {
  return cpu_->repacked_bytes();
}

Status DeepSeek2::forward(const std::vector<BatchToken>& batch, const KvView& kv,
                          std::vector<float>& logits) {
  if (kv.pages == nullptr || kv.pages->n_layer() != static_cast<int>(hp_.n_layer_decode()) ||
      kv.pages->width() != static_cast<int>(hp_.kv_cache_width())) {
    return make_error("the KV cache does not have this model's shape ({} layers of {} values)",
                      hp_.n_layer_decode(), hp_.kv_cache_width());
  }
  size_t n_out = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    const BatchToken& t = batch[i];
    if (t.token < 0 || static_cast<uint32_t>(t.token) >= hp_.n_vocab) {
      return make_error("batch token {}: id {} is outside the vocabulary (0..{})", i, t.token,
                        hp_.n_vocab - 1);
    }
    if (t.seq < 0 || t.seq >= static_cast<int>(kv.tables.size())) {
      return make_error("batch token {}: sequence {} is outside 0..{}", i, t.seq,
                        static_cast<int>(kv.tables.size()) - 1);
    }
    if (t.pos < 0 || t.pos >= std::min(n_ctx_, kv.capacity(t.seq))) {
      return make_error("batch token {}: position {} is outside the context of {} tokens", i, t.pos,
                        std::min(n_ctx_, kv.capacity(t.seq)));
    }
    n_out += t.logits ? 1 : 0;
  }
  logits.resize(n_out * hp_.n_vocab);
  float* out = logits.data();
  for (size_t first = 0; first < batch.size(); first += static_cast<size_t>(n_batch_)) {
    const int n = static_cast<int>(std::min(batch.size() - first, static_cast<size_t>(n_batch_)));
    forward_step(batch.data() + first, n, kv, out);
    for (int i = 0; i < n; ++i) out += batch[first + i].logits ? hp_.n_vocab : 0;
  }
  return {};
}

void DeepSeek2::forward_step(const BatchToken* batch, int n, const KvView& kv, float* logits) {
  Buffers& b = *buf_;
  backend::Backend& be = *cpu_;
  const int64_t d = hp_.n_embd;
  be.embed(w_.token_embd, batch, n, b.h.data(), d);
  for (int il = 0; il < static_cast<int>(hp_.n_layer_decode()); ++il) {
    attention(il, batch, n, kv);
    feed_forward(il, n);
  }

  int n_out = 0;
  for (int t = 0; t < n; ++t) {
    if (!batch[t].logits) continue;
    be.rms_norm(b.h.data() + t * d, d, w_.output_norm, hp_.rms_eps, 1, b.rows.data() + n_out * d, d);
    ++n_out;
  }
  if (observer_) observe(-1, "output.weight", b.rows.data(), n_out, d, d);
  be.matmul(w_.output, b.rows.data(), d, n_out, logits, hp_.n_vocab);
}

void DeepSeek2::attention(int il, const BatchToken* batch, int n, const KvView& kv) {
  Buffers& b = *buf_;
  backend::Backend& be = *cpu_;
  const LayerWeights& l = w_.layers[il];
  const int64_t d = hp_.n_embd, H = hp_.n_head, nope = hp_.qk_nope, qkd = hp_.qk_head_dim();
  const int64_t kvl = hp_.kv_lora_rank, width = hp_.kv_cache_width(), v = hp_.v_head;
  const float eps = hp_.rms_eps;

  be.rms_norm(b.h.data(), d, l.attn_norm, eps, n, b.xn.data(), d);
  if (observer_) {
    observe(il, hp_.q_lora_rank > 0 ? "attn_q_a" : "attn_q", b.xn.data(), n, d, d);
    observe(il, "attn_kv_a_mqa", b.xn.data(), n, d, d);
  }
  if (hp_.q_lora_rank > 0) {
    const int64_t ql = hp_.q_lora_rank;
    be.matmul(l.q_a, b.xn.data(), d, n, b.qa.data(), ql);
    be.rms_norm(b.qa.data(), ql, l.q_a_norm, eps, n, b.qa.data(), ql);
    if (observer_) observe(il, "attn_q_b", b.qa.data(), n, ql, ql);
    be.matmul(l.q_b, b.qa.data(), ql, n, b.q.data(), H * qkd);
  } else {
    be.matmul(l.q, b.xn.data(), d, n, b.q.data(), H * qkd);
  }
  be.matmul(l.kv_a, b.xn.data(), d, n, b.kv.data(), width);
  be.rms_norm(b.kv.data(), width, l.kv_a_norm, eps, n, b.kv.data(), width);
  be.rope(b.rope, b.kv.data() + kvl, width, 1, hp_.qk_rope, batch, n);
  be.rope(b.rope, b.q.data() + nope, H * qkd, static_cast<int>(H), qkd, batch, n);
  be.kv_store(kv, il, batch, n, b.kv.data(), width);
  const bool split = hp_.layout == MlaLayout::kSplit;
  if (observer_) {
    const gguf::TensorInfo* kv_b = file_.tensor(fmt::format("blk.{}.attn_kv_b.weight", il));
    if (kv_b != nullptr && kv_b->ne[0] == static_cast<uint64_t>(kvl))
      observe(il, "attn_kv_b", b.kv.data(), n, kvl, width);
    if (split) observe(il, "attn_k_b", b.q.data(), n * H, nope, qkd, H, b.head_of.data(), 1);
  }
  // Only the absorbed form makes o_lat, attn_v_b's input.
  float* latents = observer_ && split ? b.olat.data() : nullptr;
  const AttentionMode mode = latents != nullptr ? AttentionMode::kAbsorbed : attention_mode_;
  be.mla_attend(b.mla, l.latent, b.q.data(), batch, n, kv, il, mode, b.attn.data(), latents);

  if (observer_) {
    if (split) observe(il, "attn_v_b", b.olat.data(), n * H, kvl, kvl, H, b.head_of.data(), 1);
    observe(il, "attn_output", b.attn.data(), n, H * v, H * v);
  }
  be.matmul(l.wo, b.attn.data(), H * v, n, b.tmp.data(), d);
  be.add(b.h.data(), b.tmp.data(), nullptr, n * d);
}

void DeepSeek2::feed_forward(int il, int n) {
  Buffers& b = *buf_;
  backend::Backend& be = *cpu_;
  const LayerWeights& l = w_.layers[il];
  const int64_t d = hp_.n_embd;
  be.rms_norm(b.h.data(), d, l.ffn_norm, hp_.rms_eps, n, b.xn.data(), d);

  // `names`: the GGUF names of gate, up and down without "blk.N." and ".weight", for the observer.
  auto mlp = [&](const backend::Weight& gate, const backend::Weight& up, const backend::Weight& down,
                 const std::array<const char*, 3>& names, float* out) {
    const int64_t ff = gate.rows;
    if (observer_) {
      observe(il, names[0], b.xn.data(), n, d, d);
      observe(il, names[1], b.xn.data(), n, d, d);
    }
    be.matmul(gate, b.xn.data(), d, n, b.gate.data(), ff);
    be.matmul(up, b.xn.data(), d, n, b.up.data(), ff);
    be.silu_mul(b.gate.data(), b.up.data(), n * ff);
    if (observer_) observe(il, names[2], b.gate.data(), n, ff, ff);
    be.matmul(down, b.gate.data(), ff, n, out, d);
  };

  if (!hp_.is_moe_layer(static_cast<uint32_t>(il))) {
    mlp(l.gate, l.up, l.down, {"ffn_gate", "ffn_up", "ffn_down"}, b.tmp.data());
    be.add(b.h.data(), b.tmp.data(), nullptr, n * d);
    return;
  }

  const int64_t E = hp_.n_expert, k = hp_.n_expert_used;
  be.matmul(l.router, b.xn.data(), d, n, b.router.data(), E);
  backend::RoutingConfig cfg = b.routing;
  cfg.bias = l.router_bias.data;
  be.route(cfg, b.router.data(), n, b.ids.data(), b.weights.data());
  if (observer_) {
    observe(il, "ffn_gate_inp", b.xn.data(), n, d, d);
    observe(il, "ffn_gate_exps", b.xn.data(), n, d, d, E, b.ids.data(), static_cast<int>(k));
    observe(il, "ffn_up_exps", b.xn.data(), n, d, d, E, b.ids.data(), static_cast<int>(k));
  }
  backend::MoeDownInputs down_inputs;
  be.moe(l.experts, b.xn.data(), n, b.ids.data(), b.weights.data(), static_cast<int>(k), b.moe_out.data(),
         observer_ ? &down_inputs : nullptr);
  if (observer_) {
    for (int64_t i = 0; i < n * k; ++i) b.pair_expert[i] = b.ids[down_inputs.order[i]];
    const int64_t ff = l.experts.down.cols;
    observe(il, "ffn_down_exps", down_inputs.h, n * k, ff, ff, E, b.pair_expert.data(), 1);
  }
  if (l.shared_gate) {
    mlp(l.shared_gate, l.shared_up, l.shared_down, {"ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp"},
        b.tmp.data());
    be.add(b.h.data(), b.moe_out.data(), b.tmp.data(), n * d);
  } else {
    be.add(b.h.data(), b.moe_out.data(), nullptr, n * d);
  }
}

}  // namespace onecard::model
