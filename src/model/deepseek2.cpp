#include "model/deepseek2.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <optional>

#include <fmt/ranges.h>

#include "base/format.h"
#include "base/log.h"
#include "cpu/cpu_backend.h"
#ifdef ONECARD_HAVE_CUDA
#include "cuda/backend.h"
#endif

namespace onecard::model {

// One step's activations on one device: on the CPU views of the Buffers' vectors, on a GPU its memory.
struct DeepSeek2::Acts {
  backend::Backend* be = nullptr;
  float *h = nullptr, *xn = nullptr, *qa = nullptr, *q = nullptr, *kv = nullptr, *attn = nullptr,
        *tmp = nullptr, *gate = nullptr, *up = nullptr, *router = nullptr, *moe_out = nullptr,
        *rows = nullptr, *weights = nullptr, *logits = nullptr;
  int32_t* ids = nullptr;
  size_t logits_floats = 0;
  std::vector<void*> owned;  // device allocations, released with the model

  ~Acts() {
    if (be == nullptr || be->device().kind == backend::DeviceKind::kCpu) return;
    for (void* p : owned) be->release(p);
    if (logits != nullptr) be->release(logits);
  }
};

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
  Acts cpu;  // views of the vectors above
};

namespace {

template <class T>
void grow(std::vector<T>& v, size_t n) {
  v.assign(n, T{});
}

// Copies between the memories of two backends (the same one, or the host and a device).
void move(backend::Backend& to, void* dst, backend::Backend& from, const void* src, size_t bytes) {
  if (&to == &from) {
    if (dst != src) to.copy(dst, src, bytes);
  } else if (from.device().kind == backend::DeviceKind::kCpu) {
    to.upload(dst, src, bytes);
  } else {
    from.download(dst, src, bytes);
  }
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
  Acts& c = b.cpu;
  c.be = cpu_.get();
  c.h = b.h.data();
  c.xn = b.xn.data();
  c.qa = b.qa.data();
  c.q = b.q.data();
  c.kv = b.kv.data();
  c.attn = b.attn.data();
  c.tmp = b.tmp.data();
  c.gate = b.gate.data();
  c.up = b.up.data();
  c.router = b.router.data();
  c.moe_out = b.moe_out.data();
  c.rows = b.rows.data();
  c.weights = b.weights.data();
  c.ids = b.ids.data();
  main_ = embed_ = output_ = cpu_.get();
  layer_devices_.assign(hp_.n_layer_decode(), LayerDevices{cpu_.get(), cpu_.get(), cpu_.get()});
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
  ONECARD_TRY(model->place_on_devices(o));
  for (backend::Backend* be : {static_cast<backend::Backend*>(model->cpu_.get()), model->gpu_.get()}) {
    if (be == nullptr) continue;
    std::vector<backend::ExpertTensors*> moe_layers;
    std::vector<backend::LatentProjections*> latent;
    for (uint32_t il = 0; il < model->w_.layers.size(); ++il) {
      LayerWeights& l = model->w_.layers[il];
      const LayerDevices& dev = model->layer_devices_[il];
      if (model->hp_.is_moe_layer(il) && dev.experts == be) moe_layers.push_back(&l.experts);
      if (dev.attention == be) latent.push_back(&l.latent);
    }
    be->prepare_experts(moe_layers);
    be->prepare_latent(latent);
  }
  if (model->gpu_) log::info("{}: {}", path, model->placement_summary());
  log::info("{}: {} layers, context {} tokens", path, model->hp_.n_layer_decode(), model->n_ctx());
  return model;
}

Status DeepSeek2::set_observer(ActivationObserver* observer) {
  if (observer != nullptr && gpu_) {
    return make_error("activations cannot be observed on {}: load the model on the CPU alone", gpu_->name());
  }
  observer_ = observer;
  if (observer == nullptr) return {};
  Buffers& b = *buf_;
  const size_t nb = static_cast<size_t>(n_batch_), H = hp_.n_head;
  if (hp_.layout == MlaLayout::kSplit) grow(b.olat, nb * H * hp_.kv_lora_rank);
  b.head_of.resize(nb * H);
  for (size_t i = 0; i < b.head_of.size(); ++i) b.head_of[i] = static_cast<int32_t>(i % H);
  grow(b.pair_expert, nb * hp_.n_expert_used);
  return {};
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
  if (kv.pages->backend() != kv_backend()) {
    return make_error(
        "the KV cache is in {} memory but this model's attention runs on {} (make it with "
        "kv_backend())",
        kv.pages->backend() == nullptr ? "host" : kv.pages->backend()->name(), main_->name());
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

Status DeepSeek2::place_on_devices(const LoadOptions& o) {
  const auto device_of = [&](const std::string& name) {
    return o.device_of ? o.device_of(name) : backend::kCpu;
  };
  // Tensors that one phase reads must share its device; the first present one names the group.
  struct Group {
    std::string first;
    backend::Device device;
  };
  const auto join = [&](Group& g, const std::string& name) -> Status {
    if (file_.tensor(name) == nullptr) return {};
    const backend::Device d = device_of(name);
    if (g.first.empty()) {
      g = {name, d};
    } else if (!(d == g.device)) {
      return make_error(
          "{}: tensor '{}' is placed on {} but '{}' on {}: they are used together and must share "
          "a device",
          file_.path(), name, backend::device_name(d), g.first, backend::device_name(g.device));
    }
    return {};
  };
  const uint32_t n_layer = hp_.n_layer_decode();
  std::vector<std::array<Group, 3>> groups(n_layer);
  Group all_attention;
  for (uint32_t il = 0; il < n_layer; ++il) {
    const std::string p = fmt::format("blk.{}.", il);
    for (const char* t : {"attn_q_a", "attn_q_b", "attn_q", "attn_kv_a_mqa", "attn_kv_b", "attn_k_b",
                          "attn_v_b", "attn_output"})
      ONECARD_TRY(join(groups[il][0], p + t + ".weight"));
    ONECARD_TRY(join(all_attention, groups[il][0].first));
    for (const char* t : {"ffn_gate", "ffn_up", "ffn_down", "ffn_gate_inp", "ffn_gate_shexp", "ffn_up_shexp",
                          "ffn_down_shexp"})
      ONECARD_TRY(join(groups[il][1], p + t + ".weight"));
    for (const char* t : {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"})
      ONECARD_TRY(join(groups[il][2], p + t + ".weight"));
  }
  const backend::Device embed = device_of("token_embd.weight"), output = device_of("output.weight");
  std::optional<backend::Device> gpu;
  const auto note = [&](backend::Device d, const std::string& name) -> Status {
    if (d.kind == backend::DeviceKind::kCpu) return {};
    if (gpu && !(*gpu == d)) {
      return make_error("{}: tensor '{}' is placed on {} but others on {}: one GPU is supported",
                        file_.path(), name, backend::device_name(d), backend::device_name(*gpu));
    }
    gpu = d;
    return {};
  };
  ONECARD_TRY(note(embed, "token_embd.weight"));
  ONECARD_TRY(note(output, "output.weight"));
  for (const auto& layer : groups) {
    for (const Group& g : layer) ONECARD_TRY(note(g.device, g.first));
  }
  if (!gpu) return {};
#ifdef ONECARD_HAVE_CUDA
  const std::function<Result<std::unique_ptr<backend::Backend>>(backend::Device)> make_gpu =
      o.make_gpu ? o.make_gpu : [](backend::Device d) { return cuda::make_backend(d.index); };
#else
  if (!o.make_gpu) {
    return make_error("{}: tensors are placed on {}, but this onecard was built without CUDA", file_.path(),
                      backend::device_name(*gpu));
  }
  const auto& make_gpu = o.make_gpu;
#endif
  auto made = make_gpu(*gpu);
  if (!made.ok())
    return made.error().with_context(
        fmt::format("{}: placing tensors on {}", file_.path(), backend::device_name(*gpu)));
  gpu_ = std::move(made).value();

  const auto be_on = [&](backend::Device d) -> backend::Backend* {
    return d.kind == backend::DeviceKind::kCpu ? static_cast<backend::Backend*>(cpu_.get()) : gpu_.get();
  };
  // A phase without tensors (no routed experts in a dense layer) runs where `otherwise` does.
  const auto be_of = [&](const Group& g, backend::Backend* otherwise) {
    return g.first.empty() ? otherwise : be_on(g.device);
  };
  main_ = be_of(all_attention, cpu_.get());
  embed_ = be_on(embed);
  output_ = be_on(output);
  for (uint32_t il = 0; il < n_layer; ++il) {
    backend::Backend* ffn = be_of(groups[il][1], main_);
    layer_devices_[il] = {main_, ffn, be_of(groups[il][2], ffn)};
  }

  // Every weight a GPU phase reads is copied there; the norms go with the phase that applies them.
  const auto place = [&](backend::Backend* be, auto& tensor, const std::string& name) -> Status {
    if (be == cpu_.get() || !tensor) return {};
    ONECARD_ASSIGN_OR_RETURN(tensor, be->place(tensor, name));
    return {};
  };
  ONECARD_TRY(place(embed_, w_.token_embd, "token_embd.weight"));
  ONECARD_TRY(place(output_, w_.output, "output.weight"));
  ONECARD_TRY(place(main_, w_.output_norm, "output_norm.weight"));
  for (uint32_t il = 0; il < n_layer; ++il) {
    LayerWeights& l = w_.layers[il];
    const LayerDevices& dev = layer_devices_[il];
    const std::string p = fmt::format("blk.{}.", il);
    ONECARD_TRY(place(main_, l.attn_norm, p + "attn_norm.weight"));
    ONECARD_TRY(place(main_, l.q_a_norm, p + "attn_q_a_norm.weight"));
    ONECARD_TRY(place(main_, l.kv_a_norm, p + "attn_kv_a_norm.weight"));
    ONECARD_TRY(place(main_, l.ffn_norm, p + "ffn_norm.weight"));
    ONECARD_TRY(place(main_, l.q_a, p + "attn_q_a.weight"));
    ONECARD_TRY(place(main_, l.q_b, p + "attn_q_b.weight"));
    ONECARD_TRY(place(main_, l.q, p + "attn_q.weight"));
    ONECARD_TRY(place(main_, l.kv_a, p + "attn_kv_a_mqa.weight"));
    ONECARD_TRY(place(main_, l.wo, p + "attn_output.weight"));
    const char* kb = hp_.layout == MlaLayout::kSplit ? "attn_k_b" : "attn_kv_b";
    const char* vb = hp_.layout == MlaLayout::kSplit ? "attn_v_b" : "attn_kv_b";
    for (size_t h = 0; h < l.latent.uk.size(); ++h) {
      ONECARD_TRY(place(main_, l.latent.uk[h], fmt::format("{}{}.weight (head {})", p, kb, h)));
      ONECARD_TRY(place(main_, l.latent.uv[h], fmt::format("{}{}.weight (head {})", p, vb, h)));
    }
    ONECARD_TRY(place(dev.ffn, l.gate, p + "ffn_gate.weight"));
    ONECARD_TRY(place(dev.ffn, l.up, p + "ffn_up.weight"));
    ONECARD_TRY(place(dev.ffn, l.down, p + "ffn_down.weight"));
    ONECARD_TRY(place(dev.ffn, l.router, p + "ffn_gate_inp.weight"));
    ONECARD_TRY(place(dev.ffn, l.router_bias, p + "exp_probs_b.bias"));
    ONECARD_TRY(place(dev.ffn, l.shared_gate, p + "ffn_gate_shexp.weight"));
    ONECARD_TRY(place(dev.ffn, l.shared_up, p + "ffn_up_shexp.weight"));
    ONECARD_TRY(place(dev.ffn, l.shared_down, p + "ffn_down_shexp.weight"));
    ONECARD_TRY(place(dev.experts, l.experts.gate, p + "ffn_gate_exps.weight"));
    ONECARD_TRY(place(dev.experts, l.experts.up, p + "ffn_up_exps.weight"));
    ONECARD_TRY(place(dev.experts, l.experts.down, p + "ffn_down_exps.weight"));
  }

  // The GPU's activations, as large as the CPU's.
  gpu_acts_ = std::make_unique<Acts>();
  Acts& a = *gpu_acts_;
  a.be = gpu_.get();
  const Buffers& b = *buf_;
  const auto alloc = [&](float*& p, size_t floats) -> Status {
    p = static_cast<float*>(gpu_->alloc(std::max<size_t>(floats, 1) * sizeof(float)));
    if (p == nullptr) {
      return make_error("{}: out of memory on {} for the activations of a {}-token step ({})", file_.path(),
                        gpu_->name(), n_batch_, human_bytes(floats * sizeof(float)));
    }
    a.owned.push_back(p);
    return {};
  };
  ONECARD_TRY(alloc(a.h, b.h.size()));
  ONECARD_TRY(alloc(a.xn, b.xn.size()));
  ONECARD_TRY(alloc(a.qa, b.qa.size()));
  ONECARD_TRY(alloc(a.q, b.q.size()));
  ONECARD_TRY(alloc(a.kv, b.kv.size()));
  ONECARD_TRY(alloc(a.attn, b.attn.size()));
  ONECARD_TRY(alloc(a.tmp, b.tmp.size()));
  ONECARD_TRY(alloc(a.gate, b.gate.size()));
  ONECARD_TRY(alloc(a.up, b.up.size()));
  ONECARD_TRY(alloc(a.router, b.router.size()));
  ONECARD_TRY(alloc(a.moe_out, b.moe_out.size()));
  ONECARD_TRY(alloc(a.rows, b.rows.size()));
  ONECARD_TRY(alloc(a.weights, b.weights.size()));
  float* ids = nullptr;
  ONECARD_TRY(alloc(ids, b.ids.size()));
  a.ids = reinterpret_cast<int32_t*>(ids);
  return {};
}

DeepSeek2::Acts& DeepSeek2::acts(backend::Backend* be) {
  return be == cpu_.get() ? buf_->cpu : *gpu_acts_;
}

backend::Backend* DeepSeek2::kv_backend() const {
  return main_ == cpu_.get() ? nullptr : main_;
}

std::string DeepSeek2::placement_summary() const {
  if (!gpu_) return "every op on the CPU";
  std::vector<std::string> on_gpu, on_cpu;
  const auto add = [&](backend::Backend* be, const std::string& what) {
    auto& list = be == cpu_.get() ? on_cpu : on_gpu;
    if (std::find(list.begin(), list.end(), what) == list.end()) list.push_back(what);
  };
  add(embed_, "embedding");
  add(main_, "attention and KV cache");
  for (uint32_t il = 0; il < layer_devices_.size(); ++il) {
    const bool moe = hp_.is_moe_layer(il);
    add(layer_devices_[il].ffn, moe ? "router and shared experts" : "dense FFN");
    if (moe) add(layer_devices_[il].experts, "routed experts");
  }
  add(output_, "output head");
  std::string out;
  if (!on_gpu.empty()) out += fmt::format("{} on {}", fmt::join(on_gpu, ", "), gpu_->name());
  if (!on_cpu.empty())
    out += fmt::format("{}{} on the CPU", out.empty() ? "" : "; ", fmt::join(on_cpu, ", "));
  return out;
}

void DeepSeek2::forward_step(const BatchToken* batch, int n, const KvView& kv, float* logits) {
  Acts& m = acts(main_);
  Acts& e = acts(embed_);
  const int64_t d = hp_.n_embd;
  e.be->embed(w_.token_embd, batch, n, e.h, d);
  if (&e != &m) move(*m.be, m.h, *e.be, e.h, static_cast<size_t>(n * d) * sizeof(float));
  for (int il = 0; il < static_cast<int>(hp_.n_layer_decode()); ++il) {
    attention(il, batch, n, kv);
    feed_forward(il, n);
  }

  int n_out = 0;
  for (int t = 0; t < n; ++t) {
    if (!batch[t].logits) continue;
    m.be->rms_norm(m.h + t * d, d, w_.output_norm, hp_.rms_eps, 1, m.rows + n_out * d, d);
    ++n_out;
  }
  if (observer_) observe(-1, "output.weight", m.rows, n_out, d, d);
  Acts& o = acts(output_);
  if (&o != &m) move(*o.be, o.rows, *m.be, m.rows, static_cast<size_t>(n_out * d) * sizeof(float));
  if (&o == &buf_->cpu) {
    o.be->matmul(w_.output, o.rows, d, n_out, logits, hp_.n_vocab);
    return;
  }
  const size_t floats = static_cast<size_t>(n_out) * hp_.n_vocab;
  if (floats > o.logits_floats) {
    // Grown to the most logits a step has asked for (the sequences of a decode step, typically).
    if (o.logits != nullptr) o.be->release(o.logits);
    o.logits = static_cast<float*>(o.be->alloc(floats * sizeof(float)));
    if (o.logits == nullptr) {
      log::error("out of memory on {} for {} logits", o.be->name(), floats);
      std::abort();
    }
    o.logits_floats = floats;
  }
  o.be->matmul(w_.output, o.rows, d, n_out, o.logits, hp_.n_vocab);
  o.be->download(logits, o.logits, floats * sizeof(float));
}

void DeepSeek2::attention(int il, const BatchToken* batch, int n, const KvView& kv) {
  Buffers& b = *buf_;
  Acts& a = acts(main_);
  backend::Backend& be = *a.be;
  const LayerWeights& l = w_.layers[il];
  const int64_t d = hp_.n_embd, H = hp_.n_head, nope = hp_.qk_nope, qkd = hp_.qk_head_dim();
  const int64_t kvl = hp_.kv_lora_rank, width = hp_.kv_cache_width(), v = hp_.v_head;
  const float eps = hp_.rms_eps;

  be.rms_norm(a.h, d, l.attn_norm, eps, n, a.xn, d);
  if (observer_) {
    observe(il, hp_.q_lora_rank > 0 ? "attn_q_a" : "attn_q", a.xn, n, d, d);
    observe(il, "attn_kv_a_mqa", a.xn, n, d, d);
  }
  if (hp_.q_lora_rank > 0) {
    const int64_t ql = hp_.q_lora_rank;
    be.matmul(l.q_a, a.xn, d, n, a.qa, ql);
    be.rms_norm(a.qa, ql, l.q_a_norm, eps, n, a.qa, ql);
    if (observer_) observe(il, "attn_q_b", a.qa, n, ql, ql);
    be.matmul(l.q_b, a.qa, ql, n, a.q, H * qkd);
  } else {
    be.matmul(l.q, a.xn, d, n, a.q, H * qkd);
  }
  be.matmul(l.kv_a, a.xn, d, n, a.kv, width);
  be.rms_norm(a.kv, width, l.kv_a_norm, eps, n, a.kv, width);
  be.rope(b.rope, a.kv + kvl, width, 1, hp_.qk_rope, batch, n);
  be.rope(b.rope, a.q + nope, H * qkd, static_cast<int>(H), qkd, batch, n);
  be.kv_store(kv, il, batch, n, a.kv, width);
  const bool split = hp_.layout == MlaLayout::kSplit;
  if (observer_) {
    const gguf::TensorInfo* kv_b = file_.tensor(fmt::format("blk.{}.attn_kv_b.weight", il));
    if (kv_b != nullptr && kv_b->ne[0] == static_cast<uint64_t>(kvl))
      observe(il, "attn_kv_b", a.kv, n, kvl, width);
    if (split) observe(il, "attn_k_b", a.q, n * H, nope, qkd, H, b.head_of.data(), 1);
  }
  // Only the absorbed form makes o_lat, attn_v_b's input.
  float* latents = observer_ && split ? b.olat.data() : nullptr;
  const AttentionMode mode = latents != nullptr ? AttentionMode::kAbsorbed : attention_mode_;
  be.mla_attend(b.mla, l.latent, a.q, batch, n, kv, il, mode, a.attn, latents);

  if (observer_) {
    if (split) observe(il, "attn_v_b", b.olat.data(), n * H, kvl, kvl, H, b.head_of.data(), 1);
    observe(il, "attn_output", a.attn, n, H * v, H * v);
  }
  be.matmul(l.wo, a.attn, H * v, n, a.tmp, d);
  be.add(a.h, a.tmp, nullptr, n * d);
}

void DeepSeek2::feed_forward(int il, int n) {
  Buffers& b = *buf_;
  Acts& m = acts(main_);
  const LayerDevices& dev = layer_devices_[il];
  Acts& f = acts(dev.ffn);
  const LayerWeights& l = w_.layers[il];
  const int64_t d = hp_.n_embd;
  const size_t row_bytes = static_cast<size_t>(n * d) * sizeof(float);
  m.be->rms_norm(m.h, d, l.ffn_norm, hp_.rms_eps, n, m.xn, d);
  if (&f != &m) move(*f.be, f.xn, *m.be, m.xn, row_bytes);

  // `names`: the GGUF names of gate, up and down without "blk.N." and ".weight", for the observer.
  auto mlp = [&](const backend::Weight& gate, const backend::Weight& up, const backend::Weight& down,
                 const std::array<const char*, 3>& names) {
    const int64_t ff = gate.rows;
    if (observer_) {
      observe(il, names[0], f.xn, n, d, d);
      observe(il, names[1], f.xn, n, d, d);
    }
    f.be->matmul(gate, f.xn, d, n, f.gate, ff);
    f.be->matmul(up, f.xn, d, n, f.up, ff);
    f.be->silu_mul(f.gate, f.up, n * ff);
    if (observer_) observe(il, names[2], f.gate, n, ff, ff);
    f.be->matmul(down, f.gate, ff, n, f.tmp, d);
  };
  // The FFN's output (f.tmp) back on the residual's device.
  const auto tmp_to_main = [&] {
    if (&f != &m) move(*m.be, m.tmp, *f.be, f.tmp, row_bytes);
  };

  if (!hp_.is_moe_layer(static_cast<uint32_t>(il))) {
    mlp(l.gate, l.up, l.down, {"ffn_gate", "ffn_up", "ffn_down"});
    tmp_to_main();
    m.be->add(m.h, m.tmp, nullptr, n * d);
    return;
  }

  const int64_t E = hp_.n_expert, k = hp_.n_expert_used;
  f.be->matmul(l.router, f.xn, d, n, f.router, E);
  backend::RoutingConfig cfg = b.routing;
  cfg.bias = l.router_bias.data;
  f.be->route(cfg, f.router, n, f.ids, f.weights);
  if (observer_) {
    observe(il, "ffn_gate_inp", f.xn, n, d, d);
    observe(il, "ffn_gate_exps", f.xn, n, d, d, E, f.ids, static_cast<int>(k));
    observe(il, "ffn_up_exps", f.xn, n, d, d, E, f.ids, static_cast<int>(k));
  }
  // The routed experts (the CPU's, in the default split) get the normalised rows, the ids and the weights.
  Acts& x = acts(dev.experts);
  if (&x != &f) {
    const size_t pair_bytes = static_cast<size_t>(n * k) * sizeof(int32_t);
    move(*x.be, x.xn, *f.be, f.xn, row_bytes);
    move(*x.be, x.ids, *f.be, f.ids, pair_bytes);
    move(*x.be, x.weights, *f.be, f.weights, pair_bytes);
  }
  backend::MoeDownInputs down_inputs;
  x.be->moe(l.experts, x.xn, n, x.ids, x.weights, static_cast<int>(k), x.moe_out,
            observer_ ? &down_inputs : nullptr);
  if (observer_) {
    for (int64_t i = 0; i < n * k; ++i) b.pair_expert[i] = f.ids[down_inputs.order[i]];
    const int64_t ff = l.experts.down.cols;
    observe(il, "ffn_down_exps", down_inputs.h, n * k, ff, ff, E, b.pair_expert.data(), 1);
  }
  if (&x != &m) move(*m.be, m.moe_out, *x.be, x.moe_out, row_bytes);
  if (l.shared_gate) {
    mlp(l.shared_gate, l.shared_up, l.shared_down, {"ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp"});
    tmp_to_main();
    m.be->add(m.h, m.moe_out, m.tmp, n * d);
  } else {
    m.be->add(m.h, m.moe_out, nullptr, n * d);
  }
}

}  // namespace onecard::model
