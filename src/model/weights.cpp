#include "model/weights.h"

#include <fmt/ranges.h>

#include "cpu/matmul.h"
#include "quant/dequantize.h"

namespace onecard::model {
namespace {

using Shape = std::vector<uint64_t>;

class Binder {
 public:
  Binder(const gguf::File& f, Weights& w) : f_(f), w_(w) {}

  Result<const gguf::TensorInfo*> find(const std::string& name, const Shape& shape) const {
    const gguf::TensorInfo* t = f_.tensor(name);
    if (t == nullptr) {
      return make_error("{}: missing tensor '{}' (expected shape [{}])", f_.path(), name,
                        fmt::join(shape, ", "));
    }
    const Shape found(t->dims().begin(), t->dims().end());
    if (found != shape) {
      return make_error("{}: tensor '{}' has shape {}, expected [{}]", f_.path(), name, t->shape_string(),
                        fmt::join(shape, ", "));
    }
    return t;
  }

  // A matrix [cols, rows] or a stack of them [cols, rows, n].
  Result<backend::Weight> matrix(const std::string& name, const Shape& shape) const {
    ONECARD_ASSIGN_OR_RETURN(const gguf::TensorInfo* t, find(name, shape));
    auto ok = cpu::check_matmul_type(t->type);
    if (!ok.ok()) return ok.error().with_context(fmt::format("{}: tensor '{}'", f_.path(), name));
    return backend::make_weight(t->type, static_cast<int64_t>(shape[0]), static_cast<int64_t>(shape[1]),
                                t->data, shape.size() > 2 ? static_cast<int64_t>(shape[2]) : 1);
  }

  // A vector used as float32: in place when stored so, converted once otherwise.
  Result<backend::Vector> vector(const std::string& name, uint64_t n) {
    ONECARD_ASSIGN_OR_RETURN(const gguf::TensorInfo* t, find(name, {n}));
    const auto len = static_cast<int64_t>(n);
    if (t->type == gguf::GgmlType::F32) return backend::Vector{reinterpret_cast<const float*>(t->data), len};
    auto buf = std::make_unique<float[]>(n);
    auto ok = quant::dequantize_row(t->type, t->data, buf.get(), len);
    if (!ok.ok()) return ok.error().with_context(fmt::format("{}: tensor '{}'", f_.path(), name));
    w_.converted.push_back(std::move(buf));
    return backend::Vector{w_.converted.back().get(), len};
  }

  bool has(const std::string& name) const { return f_.tensor(name) != nullptr; }

 private:
  const gguf::File& f_;
  Weights& w_;
};

Status bind_attention(Binder& b, const HParams& hp, const std::string& p, LayerWeights& l) {
  const uint64_t d = hp.n_embd, H = hp.n_head, nope = hp.qk_nope, rope = hp.qk_rope, v = hp.v_head;
  const uint64_t kvl = hp.kv_lora_rank;
  ONECARD_ASSIGN_OR_RETURN(l.attn_norm, b.vector(p + "attn_norm.weight", d));
  if (hp.q_lora_rank > 0) {
    ONECARD_ASSIGN_OR_RETURN(l.q_a, b.matrix(p + "attn_q_a.weight", {d, hp.q_lora_rank}));
    ONECARD_ASSIGN_OR_RETURN(l.q_a_norm, b.vector(p + "attn_q_a_norm.weight", hp.q_lora_rank));
    ONECARD_ASSIGN_OR_RETURN(l.q_b, b.matrix(p + "attn_q_b.weight", {hp.q_lora_rank, H * (nope + rope)}));
  } else {
    ONECARD_ASSIGN_OR_RETURN(l.q, b.matrix(p + "attn_q.weight", {d, H * (nope + rope)}));
  }
  ONECARD_ASSIGN_OR_RETURN(l.kv_a, b.matrix(p + "attn_kv_a_mqa.weight", {d, kvl + rope}));
  ONECARD_ASSIGN_OR_RETURN(l.kv_a_norm, b.vector(p + "attn_kv_a_norm.weight", kvl));
  std::vector<backend::Weight>& uk = l.latent.uk;
  std::vector<backend::Weight>& uv = l.latent.uv;
  uk.resize(H);
  uv.resize(H);
  if (hp.layout == MlaLayout::kSplit) {
    ONECARD_ASSIGN_OR_RETURN(const backend::Weight k_b, b.matrix(p + "attn_k_b.weight", {nope, kvl, H}));
    ONECARD_ASSIGN_OR_RETURN(const backend::Weight v_b, b.matrix(p + "attn_v_b.weight", {kvl, v, H}));
    for (uint64_t h = 0; h < H; ++h) {
      uk[h] = k_b.row_range(static_cast<int64_t>(h * kvl), static_cast<int64_t>(kvl));
      uv[h] = v_b.row_range(static_cast<int64_t>(h * v), static_cast<int64_t>(v));
    }
    l.latent.uk_transposed = false;
  } else {
    // Per head: qk_nope rows of K then v rows of V.
    ONECARD_ASSIGN_OR_RETURN(const backend::Weight kv_b,
                             b.matrix(p + "attn_kv_b.weight", {kvl, H * (nope + v)}));
    for (uint64_t h = 0; h < H; ++h) {
      uk[h] = kv_b.row_range(static_cast<int64_t>(h * (nope + v)), static_cast<int64_t>(nope));
      uv[h] = kv_b.row_range(static_cast<int64_t>(h * (nope + v) + nope), static_cast<int64_t>(v));
    }
    l.latent.uk_transposed = true;
  }
  ONECARD_ASSIGN_OR_RETURN(l.wo, b.matrix(p + "attn_output.weight", {H * v, d}));
  return {};
}

Status bind_ffn(Binder& b, const HParams& hp, uint32_t il, const std::string& p, LayerWeights& l) {
  const uint64_t d = hp.n_embd;
  ONECARD_ASSIGN_OR_RETURN(l.ffn_norm, b.vector(p + "ffn_norm.weight", d));
  if (!hp.is_moe_layer(il)) {
    ONECARD_ASSIGN_OR_RETURN(l.gate, b.matrix(p + "ffn_gate.weight", {d, hp.n_ff}));
    ONECARD_ASSIGN_OR_RETURN(l.up, b.matrix(p + "ffn_up.weight", {d, hp.n_ff}));
    ONECARD_ASSIGN_OR_RETURN(l.down, b.matrix(p + "ffn_down.weight", {hp.n_ff, d}));
    return {};
  }
  const uint64_t E = hp.n_expert, ff = hp.n_ff_exp;
  ONECARD_ASSIGN_OR_RETURN(l.router, b.matrix(p + "ffn_gate_inp.weight", {d, E}));
  if (b.has(p + "exp_probs_b.bias")) {
    ONECARD_ASSIGN_OR_RETURN(l.router_bias, b.vector(p + "exp_probs_b.bias", E));
  }
  ONECARD_ASSIGN_OR_RETURN(l.experts.gate, b.matrix(p + "ffn_gate_exps.weight", {d, ff, E}));
  ONECARD_ASSIGN_OR_RETURN(l.experts.up, b.matrix(p + "ffn_up_exps.weight", {d, ff, E}));
  ONECARD_ASSIGN_OR_RETURN(l.experts.down, b.matrix(p + "ffn_down_exps.weight", {ff, d, E}));
  if (hp.n_expert_shared > 0) {
    const uint64_t sff = ff * hp.n_expert_shared;
    ONECARD_ASSIGN_OR_RETURN(l.shared_gate, b.matrix(p + "ffn_gate_shexp.weight", {d, sff}));
    ONECARD_ASSIGN_OR_RETURN(l.shared_up, b.matrix(p + "ffn_up_shexp.weight", {d, sff}));
    ONECARD_ASSIGN_OR_RETURN(l.shared_down, b.matrix(p + "ffn_down_shexp.weight", {sff, d}));
  }
  return {};
}

}  // namespace

Result<Weights> bind_weights(const gguf::File& file, const HParams& hp) {
  Weights w;
  Binder b(file, w);
  const uint64_t d = hp.n_embd;
  ONECARD_ASSIGN_OR_RETURN(w.token_embd, b.matrix("token_embd.weight", {d, hp.n_vocab}));
  ONECARD_ASSIGN_OR_RETURN(w.output_norm, b.vector("output_norm.weight", d));
  ONECARD_ASSIGN_OR_RETURN(w.output, b.matrix("output.weight", {d, hp.n_vocab}));
  w.layers.resize(hp.n_layer_decode());
  for (uint32_t il = 0; il < hp.n_layer_decode(); ++il) {
    const std::string prefix = fmt::format("blk.{}.", il);
    ONECARD_TRY(bind_attention(b, hp, prefix, w.layers[il]));
    ONECARD_TRY(bind_ffn(b, hp, il, prefix, w.layers[il]));
  }
  return w;
}

}  // namespace onecard::model
