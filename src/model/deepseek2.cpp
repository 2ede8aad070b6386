#include "model/deepseek2.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "base/cpu_features.h"
#include "base/format.h"
#include "base/half.h"
#include "base/log.h"
#include "base/progress.h"
#include "cpu/kernels.h"
#include "cpu/matmul.h"
#include "cpu/matmul_serial.h"
#include "cpu/ops.h"
#include "model/routing.h"
#include "quant/dequantize.h"

namespace onecard::model {

struct DeepSeek2::Buffers {
  // Per token of a step: the residual stream and what each stage makes of it.
  std::vector<float> h, xn, qa, q, kv, attn, tmp, gate, up, router, moe_out, rows;
  std::vector<int32_t> ids;
  std::vector<float> weights;
  std::vector<MlaScratch> threads;
  // Of the absorbed runs split over their positions: each head group's latent queries (by HeadMerge) and
  // parts (HeadTask::part).
  std::vector<std::vector<float>> split_queries;
  std::vector<LatentPartial> parts;
  MlaShape mla{};
  cpu::Rope rope;
  RoutingConfig routing;
  std::vector<RoutingScratch> routing_scratch;
  cpu::MoeScratch moe;
  // Only with an activation observer: each token's o_lat per head (split layouts), the head of each
  // (token, head) row, the expert of each (token, slot) pair in the MoE scratch's expert order.
  std::vector<float> olat;
  std::vector<int32_t> head_of, pair_expert;
};

namespace {

template <class T>
void grow(std::vector<T>& v, size_t n) {
  v.assign(n, T{});
}

}  // namespace

DeepSeek2::DeepSeek2(gguf::File file, HParams hp, Weights w, const LoadOptions& o)
    : file_(std::move(file)),
      hp_(std::move(hp)),
      w_(std::move(w)),
      n_ctx_(o.n_ctx),
      pool_(make_thread_pool(o.n_threads, o.placement)),
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
  b.threads.resize(static_cast<size_t>(pool_->size()));
  for (auto& t : b.threads) {
    grow(t.qcat, nb * width);
    grow(t.olat, nb * hp_.kv_lora_rank);
    grow(t.scores, static_cast<size_t>(n_ctx_));
  }
  b.mla =
      MlaShape{static_cast<int64_t>(H),     hp_.qk_nope,          hp_.qk_rope, hp_.kv_lora_rank, hp_.v_head,
               static_cast<int64_t>(width), hp_.attention_scale()};
  b.rope = hp_.yarn.enabled ? cpu::Rope(static_cast<int>(hp_.qk_rope), hp_.rope_freq_base, hp_.yarn.factor,
                                        static_cast<int>(hp_.yarn.original_context), hp_.yarn.beta_fast,
                                        hp_.yarn.beta_slow)
                            : cpu::Rope(static_cast<int>(hp_.qk_rope), hp_.rope_freq_base, 1.0f, 0, 0, 0);
  if (hp_.n_expert > 0) {
    b.routing = RoutingConfig::from(hp_, nullptr);
    b.routing_scratch.assign(static_cast<size_t>(pool_->size()), RoutingScratch(b.routing));
  }
}

DeepSeek2::~DeepSeek2() = default;

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
  ONECARD_TRY(place_weights(model->file_.bytes(), experts, *model->pool_, o.placement, path));
  if (o.repack_experts) model->repack_experts();
  model->turn_uk();
  log::info("{}: {} layers, context {} tokens", path, model->hp_.n_layer_decode(), model->n_ctx());
  return model;
}

void DeepSeek2::turn_uk() {
  uint64_t bytes = 0;
  for (LayerWeights& l : w_.layers) {
    if (!l.uk_transposed || l.uk.empty()) continue;
    const cpu::Matrix& first = l.uk[0];
    const bool wide = first.type == gguf::GgmlType::F32 || first.type == gguf::GgmlType::BF16;
    const gguf::GgmlType type = wide ? gguf::GgmlType::F32 : gguf::GgmlType::F16;
    const size_t elem = wide ? 4 : 2, per_head = static_cast<size_t>(first.rows * first.cols) * elem;
    const quant::DequantizeFn dequantize = quant::dequantize_fn(first.type);
    std::vector<uint8_t>& copy = w_.uk_copies.emplace_back(per_head * l.uk.size());
    l.uk_rows.resize(l.uk.size());
    pool_->parallel_for(static_cast<int64_t>(l.uk.size()), [&](int64_t h, int) {
      const cpu::Matrix& w = l.uk[h];
      std::vector<float> row(static_cast<size_t>(w.cols));
      uint8_t* out = copy.data() + static_cast<size_t>(h) * per_head;
      for (int64_t r = 0; r < w.rows; ++r) {
        dequantize(w.row(r), row.data(), w.cols);
        for (int64_t c = 0; c < w.cols; ++c) {
          const size_t at = static_cast<size_t>(c * w.rows + r);
          if (wide) {
            std::memcpy(out + at * 4, &row[c], 4);
          } else {
            const uint16_t half = fp32_to_fp16(row[c]);
            std::memcpy(out + at * 2, &half, 2);
          }
        }
      }
      l.uk_rows[h] = cpu::make_matrix(type, w.rows, w.cols, out);
    });
    bytes += copy.size();
  }
  if (bytes > 0) log::info("W_UK turned into rows of the latent for decode: {}", human_bytes(bytes));
}

void DeepSeek2::repack_experts() {
  // Only the formats the chosen kernels have a packer for are copied (none on ISAs without one).
  const cpu::KernelTable& kernels = cpu::active_kernels();
  uint64_t bytes = 0;
  for (const LayerWeights& l : w_.layers) bytes += cpu::packed_experts_bytes(l.experts, kernels);
  if (bytes == 0) return;
  // The copy must not push the mapped file out of memory: a model larger than RAM keeps streaming from it.
  const uint64_t available = system_info().memory_available;
  if (bytes > available / 10 * 9) {
    log::warn(
        "experts ({}) not repacked for {}: only {} of memory available; the kernels read them in the "
        "file's layout (slower prefill)",
        human_bytes(bytes), cpu::isa_name(kernels.isa), human_bytes(available));
    return;
  }
  Progress progress("repacking experts", bytes, bytes >= (uint64_t{1} << 30));
  for (LayerWeights& l : w_.layers) {
    if (cpu::packed_experts_bytes(l.experts, kernels) == 0) continue;
    cpu::PackedBuffer packed = cpu::pack_experts(l.experts, *pool_, kernels);
    if (packed.data == nullptr) {
      // The layers packed so far keep their copies; the rest read the file.
      log::warn("out of memory after repacking {} of experts; the remaining layers read the file's layout",
                human_bytes(repacked_bytes()));
      break;
    }
    progress.advance(packed.bytes);
    w_.packed.push_back(std::move(packed));
  }
  progress.finish();
  log::info("Q2_K/Q4_K/Q6_K experts repacked for AVX-512 VNNI: {}", human_bytes(repacked_bytes()));
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
  uint64_t bytes = 0;
  for (const cpu::PackedBuffer& b : w_.packed) bytes += b.bytes;
  return bytes;
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
  const int64_t d = hp_.n_embd;
  const quant::DequantizeFn embed = quant::dequantize_fn(w_.token_embd.type);
  for (int t = 0; t < n; ++t) embed(w_.token_embd.row(batch[t].token), b.h.data() + t * d, d);

  plan_runs(batch, n);
  for (int il = 0; il < static_cast<int>(hp_.n_layer_decode()); ++il) {
    attention(il, batch, n, kv);
    feed_forward(il, n);
  }

  int n_out = 0;
  for (int t = 0; t < n; ++t) {
    if (!batch[t].logits) continue;
    cpu::rms_norm(b.h.data() + t * d, w_.output_norm, b.rows.data() + n_out * d, d, hp_.rms_eps);
    ++n_out;
  }
  if (observer_) observe(-1, "output.weight", b.rows.data(), n_out, d, d);
  cpu::matmul(w_.output, b.rows.data(), d, n_out, logits, hp_.n_vocab, *pool_);
}

void DeepSeek2::plan_runs(const BatchToken* batch, int n) {
  runs_.clear();
  for (int first = 0; first < n;) {
    int count = 1;
    while (first + count < n && batch[first + count].seq == batch[first].seq) ++count;
    bool expanded = attention_mode_ == AttentionMode::kExpanded;
    if (attention_mode_ == AttentionMode::kAuto) expanded = prefer_expanded(buf_->mla, batch + first, count);
    if (observer_ && hp_.layout == MlaLayout::kSplit) expanded = false;  // only it makes o_lat
    // The absorbed form takes tokens of any sequences: neighbouring absorbed runs become one, so that a
    // head's projections into and out of the latent space run once for all the sequences decoding in this
    // step.
    if (!expanded && !runs_.empty() && !runs_.back().expanded) {
      runs_.back().count += count;
    } else {
      runs_.push_back({first, count, expanded});
    }
    first += count;
  }
}

void DeepSeek2::plan_attention_tasks(const BatchToken* batch, int64_t page_tokens) {
  // The expanded form goes head by head. An absorbed task takes a group of heads, which reads the cache rows
  // it attends to once for all its heads: groups are as large as still gives every thread two tasks. A run
  // of few tokens with a long context (decode) is split over its positions instead, in chunks of at least
  // kMinChunk positions, so that each thread reads its share of the cache once with every head: the group's
  // latent queries are made once beforehand, and its parts combined afterwards (finish_absorbed). Runs of
  // many tokens are not split: a part holds count * heads * kv_lora floats.
  constexpr int64_t kMinChunk = 128, kMaxSplitTokens = 8;
  const int64_t H = hp_.n_head, want = 2 * static_cast<int64_t>(pool_->size());
  int64_t absorbed_runs = 0;
  for (const Run& r : runs_) absorbed_runs += r.expanded ? 0 : 1;
  const int64_t per_run = absorbed_runs == 0 ? 1 : (want + absorbed_runs - 1) / absorbed_runs;
  tasks_.clear();
  merges_.clear();
  int n_parts = 0;
  for (int i = 0; i < static_cast<int>(runs_.size()); ++i) {
    const Run& r = runs_[i];
    if (r.expanded) {
      for (int h = 0; h < H; ++h) tasks_.push_back({i, h, 1});
      continue;
    }
    int64_t longest = 0;
    for (int t = r.first; t < r.first + r.count; ++t) longest = std::max<int64_t>(longest, batch[t].pos + 1);
    int64_t chunks = 1;
    if (r.count <= kMaxSplitTokens)
      chunks = std::clamp<int64_t>(per_run, 1, std::max<int64_t>(1, longest / kMinChunk));
    const int64_t chunk_len = ((longest + chunks - 1) / chunks + page_tokens - 1) / page_tokens * page_tokens;
    chunks = (longest + chunk_len - 1) / chunk_len;
    const int64_t groups = std::clamp<int64_t>((per_run + chunks - 1) / chunks, 1, H);
    const int64_t g = (H + groups - 1) / groups;
    for (int64_t h = 0; h < H; h += g) {
      const int heads = static_cast<int>(std::min(g, H - h));
      if (chunks == 1) {
        tasks_.push_back({i, static_cast<int>(h), heads});
        continue;
      }
      const auto merge = static_cast<int>(merges_.size());
      merges_.push_back({i, static_cast<int>(h), heads, n_parts, static_cast<int>(chunks)});
      for (int64_t c = 0; c < chunks; ++c)
        tasks_.push_back(
            {i, static_cast<int>(h), heads, n_parts++, merge, c * chunk_len, (c + 1) * chunk_len});
    }
  }
}

void DeepSeek2::attention(int il, const BatchToken* batch, int n, const KvView& kv) {
  Buffers& b = *buf_;
  const LayerWeights& l = w_.layers[il];
  const int64_t d = hp_.n_embd, H = hp_.n_head, nope = hp_.qk_nope, rope = hp_.qk_rope,
                qkd = hp_.qk_head_dim();
  const int64_t kvl = hp_.kv_lora_rank, width = hp_.kv_cache_width(), v = hp_.v_head;
  const float eps = hp_.rms_eps;

  for (int t = 0; t < n; ++t) cpu::rms_norm(b.h.data() + t * d, l.attn_norm, b.xn.data() + t * d, d, eps);
  if (observer_) {
    observe(il, hp_.q_lora_rank > 0 ? "attn_q_a" : "attn_q", b.xn.data(), n, d, d);
    observe(il, "attn_kv_a_mqa", b.xn.data(), n, d, d);
  }
  if (hp_.q_lora_rank > 0) {
    const int64_t ql = hp_.q_lora_rank;
    cpu::matmul(l.q_a, b.xn.data(), d, n, b.qa.data(), ql, *pool_);
    for (int t = 0; t < n; ++t)
      cpu::rms_norm(b.qa.data() + t * ql, l.q_a_norm, b.qa.data() + t * ql, ql, eps);
    if (observer_) observe(il, "attn_q_b", b.qa.data(), n, ql, ql);
    cpu::matmul(l.q_b, b.qa.data(), ql, n, b.q.data(), H * qkd, *pool_);
  } else {
    cpu::matmul(l.q, b.xn.data(), d, n, b.q.data(), H * qkd, *pool_);
  }
  cpu::matmul(l.kv_a, b.xn.data(), d, n, b.kv.data(), width, *pool_);
  for (int t = 0; t < n; ++t) {
    float* row = b.kv.data() + t * width;
    cpu::rms_norm(row, l.kv_a_norm, row, kvl, eps);
    b.rope.apply(row + kvl, 1, rope, batch[t].pos);
    b.rope.apply(b.q.data() + t * H * qkd + nope, static_cast<int>(H), qkd, batch[t].pos);
    kv.store(il, batch[t].seq, batch[t].pos, row);
  }
  const bool split = hp_.layout == MlaLayout::kSplit;
  if (observer_) {
    const gguf::TensorInfo* kv_b = file_.tensor(fmt::format("blk.{}.attn_kv_b.weight", il));
    if (kv_b != nullptr && kv_b->ne[0] == static_cast<uint64_t>(kvl))
      observe(il, "attn_kv_b", b.kv.data(), n, kvl, width);
    if (split) observe(il, "attn_k_b", b.q.data(), n * H, nope, qkd, H, b.head_of.data(), 1);
  }
  float* latents = observer_ && split ? b.olat.data() : nullptr;

  plan_attention_tasks(batch, kv.pages->page_tokens());
  if (b.parts.size() < tasks_.size()) b.parts.resize(tasks_.size());
  if (b.split_queries.size() < merges_.size()) b.split_queries.resize(merges_.size());
  pool_->parallel_for(static_cast<int64_t>(merges_.size()), [&](int64_t i, int) {
    const HeadMerge& m = merges_[i];
    const Run& r = runs_[m.run];
    latent_queries(b.mla, l, m.h0, m.heads, b.q.data() + r.first * H * qkd, r.count, b.split_queries[i]);
  });
  pool_->parallel_for(static_cast<int64_t>(tasks_.size()), [&](int64_t i, int thread) {
    const HeadTask& task = tasks_[i];
    const Run& r = runs_[task.run];
    const float* q = b.q.data() + r.first * H * qkd;
    float* out = b.attn.data() + r.first * H * v;
    if (r.expanded) {
      attend_expanded(b.mla, l, task.h0, q, batch + r.first, r.count, kv, il, out, b.threads[thread]);
    } else if (task.part < 0) {
      attend_absorbed(b.mla, l, task.h0, task.heads, q, batch + r.first, r.count, kv, il, out,
                      b.threads[thread], latents == nullptr ? nullptr : latents + r.first * H * kvl);
    } else {
      attend_absorbed_part(b.mla, task.heads, b.split_queries[task.merge].data(), batch + r.first, r.count,
                           kv, il, task.p0, task.p1, b.parts[task.part], b.threads[thread]);
    }
  });
  pool_->parallel_for(static_cast<int64_t>(merges_.size()), [&](int64_t i, int thread) {
    const HeadMerge& m = merges_[i];
    const Run& r = runs_[m.run];
    finish_absorbed(b.mla, l, m.h0, m.heads, r.count,
                    std::span<const LatentPartial>(b.parts.data() + m.first_part, m.n_parts),
                    b.attn.data() + r.first * H * v, b.threads[thread],
                    latents == nullptr ? nullptr : latents + r.first * H * kvl);
  });

  if (observer_) {
    if (split) observe(il, "attn_v_b", b.olat.data(), n * H, kvl, kvl, H, b.head_of.data(), 1);
    observe(il, "attn_output", b.attn.data(), n, H * v, H * v);
  }
  cpu::matmul(l.wo, b.attn.data(), H * v, n, b.tmp.data(), d, *pool_);
  for (int64_t i = 0; i < n * d; ++i) b.h[i] += b.tmp[i];
}

void DeepSeek2::feed_forward(int il, int n) {
  Buffers& b = *buf_;
  const LayerWeights& l = w_.layers[il];
  const int64_t d = hp_.n_embd;
  for (int t = 0; t < n; ++t)
    cpu::rms_norm(b.h.data() + t * d, l.ffn_norm, b.xn.data() + t * d, d, hp_.rms_eps);

  // `names`: the GGUF names of gate, up and down without "blk.N." and ".weight", for the observer.
  auto mlp = [&](const cpu::Matrix& gate, const cpu::Matrix& up, const cpu::Matrix& down,
                 const std::array<const char*, 3>& names, float* out) {
    const int64_t ff = gate.rows;
    if (observer_) {
      observe(il, names[0], b.xn.data(), n, d, d);
      observe(il, names[1], b.xn.data(), n, d, d);
    }
    cpu::matmul(gate, b.xn.data(), d, n, b.gate.data(), ff, *pool_);
    cpu::matmul(up, b.xn.data(), d, n, b.up.data(), ff, *pool_);
    for (int t = 0; t < n; ++t) cpu::silu_mul(b.gate.data() + t * ff, b.up.data() + t * ff, ff);
    if (observer_) observe(il, names[2], b.gate.data(), n, ff, ff);
    cpu::matmul(down, b.gate.data(), ff, n, out, d, *pool_);
  };

  if (!hp_.is_moe_layer(static_cast<uint32_t>(il))) {
    mlp(l.gate, l.up, l.down, {"ffn_gate", "ffn_up", "ffn_down"}, b.tmp.data());
    for (int64_t i = 0; i < n * d; ++i) b.h[i] += b.tmp[i];
    return;
  }

  const int64_t E = hp_.n_expert, k = hp_.n_expert_used;
  cpu::matmul(l.router, b.xn.data(), d, n, b.router.data(), E, *pool_);
  RoutingConfig cfg = b.routing;
  cfg.bias = l.router_bias;
  pool_->parallel_for(n, [&](int64_t t, int thread) {
    route(cfg, b.router.data() + t * E, b.ids.data() + t * k, b.weights.data() + t * k,
          b.routing_scratch[thread]);
  });
  if (observer_) {
    observe(il, "ffn_gate_inp", b.xn.data(), n, d, d);
    observe(il, "ffn_gate_exps", b.xn.data(), n, d, d, E, b.ids.data(), static_cast<int>(k));
    observe(il, "ffn_up_exps", b.xn.data(), n, d, d, E, b.ids.data(), static_cast<int>(k));
  }
  cpu::moe_forward(l.experts, b.xn.data(), n, b.ids.data(), b.weights.data(), static_cast<int>(k),
                   b.moe_out.data(), *pool_, b.moe);
  if (observer_) {
    for (int64_t i = 0; i < n * k; ++i) b.pair_expert[i] = b.ids[b.moe.order[i]];
    const int64_t ff = l.experts.down.cols;
    observe(il, "ffn_down_exps", b.moe.h.data(), n * k, ff, ff, E, b.pair_expert.data(), 1);
  }
  if (l.shared_gate.rows > 0) {
    mlp(l.shared_gate, l.shared_up, l.shared_down, {"ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp"},
        b.tmp.data());
    for (int64_t i = 0; i < n * d; ++i) b.h[i] += b.moe_out[i] + b.tmp[i];
  } else {
    for (int64_t i = 0; i < n * d; ++i) b.h[i] += b.moe_out[i];
  }
}

}  // namespace onecard::model
