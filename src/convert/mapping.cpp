#include "convert/mapping.h"

#include <cstdlib>
#include <set>
#include <string_view>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace onecard::convert {
namespace {

class Mapper {
 public:
  void rows(std::string gguf, std::vector<uint64_t> ne, std::vector<Source> sources) {
    out_.push_back(TensorMap{std::move(gguf), std::move(ne), Transform::kRows, std::move(sources)});
  }
  // A matrix: the checkpoint's [out, in] is GGUF's [in, out] with the same bytes.
  void matrix(std::string gguf, const std::string& hf, uint64_t in, uint64_t out) {
    rows(std::move(gguf), {in, out}, {Source{hf, {out, in}}});
  }
  void vector(std::string gguf, const std::string& hf, uint64_t n) {
    rows(std::move(gguf), {n}, {Source{hf, {n}}});
  }
  void add(TensorMap m) { out_.push_back(std::move(m)); }
  std::vector<TensorMap> take() && { return std::move(out_); }

 private:
  std::vector<TensorMap> out_;
};

}  // namespace

uint64_t TensorMap::n_elements() const {
  uint64_t n = 1;
  for (uint64_t d : ne) n *= d;
  return n;
}

int64_t layer_of(const std::string& hf_name) {
  constexpr std::string_view kPrefix = "model.layers.";
  if (hf_name.rfind(kPrefix, 0) != 0) return -1;
  const char* p = hf_name.c_str() + kPrefix.size();
  char* end = nullptr;
  const long long v = std::strtoll(p, &end, 10);
  if (end == p || *end != '.') return -1;
  return v;
}

std::vector<TensorMap> map_tensors(const HfConfig& c, const MappingOptions& o) {
  Mapper m;
  const uint64_t d = c.hidden_size, H = c.num_attention_heads, nope = c.qk_nope_head_dim;
  const uint64_t rope = c.qk_rope_head_dim, v = c.v_head_dim, kv = c.kv_lora_rank;
  const uint64_t E = c.n_routed_experts, ff_exp = c.moe_intermediate_size, V = c.vocab_size;
  const uint32_t n_layer = c.num_hidden_layers + (o.keep_mtp ? c.num_nextn_predict_layers : 0);

  m.matrix("token_embd.weight", "model.embed_tokens.weight", d, V);
  for (uint32_t il = 0; il < n_layer; ++il) {
    const auto g = [il](std::string_view what) { return fmt::format("blk.{}.{}", il, what); };
    const auto h = [il](std::string_view what) { return fmt::format("model.layers.{}.{}", il, what); };
    m.vector(g("attn_norm.weight"), h("input_layernorm.weight"), d);
    if (c.q_lora_rank > 0) {
      m.matrix(g("attn_q_a.weight"), h("self_attn.q_a_proj.weight"), d, c.q_lora_rank);
      m.vector(g("attn_q_a_norm.weight"), h("self_attn.q_a_layernorm.weight"), c.q_lora_rank);
      m.matrix(g("attn_q_b.weight"), h("self_attn.q_b_proj.weight"), c.q_lora_rank, H * (nope + rope));
    } else {
      m.matrix(g("attn_q.weight"), h("self_attn.q_proj.weight"), d, H * (nope + rope));
    }
    m.matrix(g("attn_kv_a_mqa.weight"), h("self_attn.kv_a_proj_with_mqa.weight"), d, kv + rope);
    m.vector(g("attn_kv_a_norm.weight"), h("self_attn.kv_a_layernorm.weight"), kv);
    const Source kv_b{h("self_attn.kv_b_proj.weight"), {H * (nope + v), kv}};
    if (o.mla == model::MlaLayout::kSplit) {
      m.add(TensorMap{g("attn_k_b.weight"), {nope, kv, H}, Transform::kKb, {kv_b}});
      m.add(TensorMap{g("attn_v_b.weight"), {kv, v, H}, Transform::kVb, {kv_b}});
    } else {
      m.rows(g("attn_kv_b.weight"), {kv, H * (nope + v)}, {kv_b});
    }
    m.matrix(g("attn_output.weight"), h("self_attn.o_proj.weight"), H * v, d);
    m.vector(g("ffn_norm.weight"), h("post_attention_layernorm.weight"), d);
    if (il < c.first_k_dense_replace) {
      m.matrix(g("ffn_gate.weight"), h("mlp.gate_proj.weight"), d, c.intermediate_size);
      m.matrix(g("ffn_up.weight"), h("mlp.up_proj.weight"), d, c.intermediate_size);
      m.matrix(g("ffn_down.weight"), h("mlp.down_proj.weight"), c.intermediate_size, d);
    } else {
      m.matrix(g("ffn_gate_inp.weight"), h("mlp.gate.weight"), d, E);
      if (c.scoring_func == "sigmoid")
        m.vector(g("exp_probs_b.bias"), h("mlp.gate.e_score_correction_bias"), E);
      // The routed experts are one tensor per projection in GGUF, expert e's matrix at index e of the last
      // dimension: its rows follow expert e-1's.
      for (const std::string_view proj : {"gate", "up", "down"}) {
        const bool down = proj == "down";
        std::vector<Source> experts;
        for (uint64_t e = 0; e < E; ++e)
          experts.push_back(
              Source{h(fmt::format("mlp.experts.{}.{}_proj.weight", e, proj)),
                     down ? std::vector<uint64_t>{d, ff_exp} : std::vector<uint64_t>{ff_exp, d}});
        m.rows(g(fmt::format("ffn_{}_exps.weight", proj)),
               down ? std::vector<uint64_t>{ff_exp, d, E} : std::vector<uint64_t>{d, ff_exp, E},
               std::move(experts));
      }
      if (c.n_shared_experts > 0) {
        const uint64_t ff_sh = ff_exp * c.n_shared_experts;
        m.matrix(g("ffn_gate_shexp.weight"), h("mlp.shared_experts.gate_proj.weight"), d, ff_sh);
        m.matrix(g("ffn_up_shexp.weight"), h("mlp.shared_experts.up_proj.weight"), d, ff_sh);
        m.matrix(g("ffn_down_shexp.weight"), h("mlp.shared_experts.down_proj.weight"), ff_sh, d);
      }
    }
    if (il >= c.num_hidden_layers) {
      // A multi-token-prediction layer: its own input norms, projection and output head.
      m.matrix(g("nextn.eh_proj.weight"), h("eh_proj.weight"), 2 * d, d);
      m.matrix(g("nextn.embed_tokens.weight"), h("embed_tokens.weight"), d, V);
      m.vector(g("nextn.enorm.weight"), h("enorm.weight"), d);
      m.vector(g("nextn.hnorm.weight"), h("hnorm.weight"), d);
      m.matrix(g("nextn.shared_head_head.weight"), h("shared_head.head.weight"), d, V);
      m.vector(g("nextn.shared_head_norm.weight"), h("shared_head.norm.weight"), d);
    }
  }
  m.vector("output_norm.weight", "model.norm.weight", d);
  m.matrix("output.weight", c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight", d, V);
  return std::move(m).take();
}

Status check_sources(const Checkpoint& ck, const std::vector<TensorMap>& maps, const MappingOptions& o) {
  const HfConfig& c = ck.config();
  std::set<std::string> used;
  for (const TensorMap& tm : maps) {
    for (const Source& s : tm.sources) {
      const StTensor* t = ck.find(s.name);
      if (t == nullptr)
        return make_error("{}: tensor '{}' (for {}) is missing from the checkpoint", ck.dir(), s.name,
                          tm.name);
      const std::string file = ck.file_of(s.name);
      if (t->shape != s.shape)
        return make_error("{}: tensor '{}': shape {} contradicts config.json, which implies [{}]", file,
                          s.name, t->shape_string(), fmt::join(s.shape, ", "));
      used.insert(s.name);
      if (t->dtype == Dtype::kF8_E4M3 || t->dtype == Dtype::kF8_E5M2) {
        const std::string sname = s.name + "_scale_inv";
        const StTensor* sc = ck.find(sname);
        if (sc == nullptr)
          return make_error("{}: tensor '{}' is {} but its block scales '{}' are missing", file, s.name,
                            dtype_name(t->dtype), sname);
        const uint64_t rows = s.shape.size() == 2 ? s.shape[0] : 1, cols = s.shape.back();
        const std::vector<uint64_t> want{(rows + c.fp8_block_rows - 1) / c.fp8_block_rows,
                                         (cols + c.fp8_block_cols - 1) / c.fp8_block_cols};
        if (sc->shape != want)
          return make_error("{}: tensor '{}': shape {} does not match the {}x{} blocks of '{}' {}",
                            ck.file_of(sname), sname, sc->shape_string(), c.fp8_block_rows, c.fp8_block_cols,
                            s.name, t->shape_string());
        if (sc->dtype != Dtype::kF32 && sc->dtype != Dtype::kBF16 && sc->dtype != Dtype::kF16)
          return make_error("{}: tensor '{}': dtype {} is not a float type for scales", ck.file_of(sname),
                            sname, dtype_name(sc->dtype));
        used.insert(sname);
      } else if (t->dtype != Dtype::kF32 && t->dtype != Dtype::kF16 && t->dtype != Dtype::kBF16 &&
                 t->dtype != Dtype::kF64) {
        return make_error("{}: tensor '{}': dtype {} is not a float type the conversion reads", file, s.name,
                          dtype_name(t->dtype));
      }
    }
  }
  // A tensor nothing maps would be silently dropped: refuse, unless it is one the model does not need.
  for (const std::string& name : ck.names()) {
    if (used.count(name) != 0) continue;
    const int64_t layer = layer_of(name);
    if (!o.keep_mtp && layer >= static_cast<int64_t>(c.num_hidden_layers)) continue;  // MTP layers skipped
    if (name.ends_with("rotary_emb.inv_freq")) continue;  // recomputed from rope_theta
    if (name == "lm_head.weight" && c.tie_word_embeddings) continue;
    return make_error("{}: tensor '{}' is not known to the deepseek2 mapping", ck.file_of(name), name);
  }
  return {};
}

}  // namespace onecard::convert
