// `onecard gen`: writes a synthetic DeepSeek (deepseek2) GGUF with random weights, for tests, demos and
// benchmarks without downloading a real model.
#include <memory>
#include <string>

#include <fmt/format.h>

#include "app/commands.h"
#include "base/format.h"
#include "synth/generate.h"
#include "synth/spec.h"

namespace onecard::app {
namespace {

struct GenOptions {
  std::string preset = "demo";
  std::string out;
  std::string type;
  std::string mla = "combined";
  uint32_t layers = 0;
  uint32_t dense_layers = 0;
  uint32_t experts = 0;
  uint32_t vocab = 0;
  uint64_t seed = 42;
  bool quiet = false;
  bool header_only = false;
  // Set when the option was given, so that only given options override the preset.
  const CLI::Option* layers_opt = nullptr;
  const CLI::Option* dense_opt = nullptr;
  const CLI::Option* experts_opt = nullptr;
  const CLI::Option* vocab_opt = nullptr;
};

Result<synth::ModelSpec> spec_from(const GenOptions& o) {
  synth::Overrides ov;
  if (o.layers_opt->count() > 0) ov.layers = o.layers;
  if (o.dense_opt->count() > 0) ov.dense_layers = o.dense_layers;
  if (o.experts_opt->count() > 0) ov.experts = o.experts;
  if (o.vocab_opt->count() > 0) ov.vocab = o.vocab;
  if (!o.type.empty()) {
    ONECARD_ASSIGN_OR_RETURN(ov.type, synth::parse_weight_type(o.type));
  }
  ONECARD_ASSIGN_OR_RETURN(ov.mla, synth::parse_mla(o.mla));
  ov.seed = o.seed;
  return synth::make_spec(o.preset, ov);
}

int run_gen(const GenOptions& o) {
  auto spec = spec_from(o);
  if (!spec.ok()) {
    fmt::print(stderr, "onecard gen: {}\n", spec.error().message());
    return 1;
  }
  auto r = o.header_only ? synth::generate_header(spec.value(), o.out)
                         : synth::generate(spec.value(), o.out, !o.quiet);
  if (!r.ok()) {
    fmt::print(stderr, "onecard gen: {}\n", r.error().message());
    return 1;
  }
  const synth::ModelSpec& s = spec.value();
  const std::string size = o.header_only
                               ? fmt::format("{} header only (describing {} of tensors, absent)",
                                             human_bytes(r->file_bytes), human_bytes(r->tensor_bytes))
                               : human_bytes(r->file_bytes);
  fmt::print(
      "{}: {}, {} tensors, {:.1f} s (preset {}, {}, {} MLA, {} layers, {} experts, vocab {}, seed {})\n",
      o.out, size, r->n_tensors, r->seconds, s.preset, model::scheme_name(s.type), synth::mla_name(s.mla),
      s.n_layer, s.n_expert, s.n_vocab, s.seed);
  return 0;
}

}  // namespace

Runner add_gen(CLI::App& app) {
  auto o = std::make_shared<GenOptions>();
  auto* cmd = app.add_subcommand("gen",
                                 "Write a synthetic DeepSeek GGUF (architecture deepseek2) with random "
                                 "weights and a working byte-level BPE "
                                 "vocabulary");
  std::string presets;
  for (auto p : synth::preset_names()) presets += (presets.empty() ? "" : ", ") + std::string(p);
  cmd->add_option(
         "--preset", o->preset,
         fmt::format("Model shape: {} (tiny: a few MB for tests; tiny-v2lite: V2-Lite structure; demo: a "
                     "small V3-like model; v3-slice: DeepSeek-V3's exact layer shapes, few layers; r1: "
                     "DeepSeek-R1/V3 whole, 61 layers, 377 GiB at q4_k_m: use --header-only)",
                     presets))
      ->capture_default_str();
  cmd->add_option("-o,--out", o->out, "Output GGUF file")->required();
  cmd->add_option(
      "--type", o->type,
      "Weight type: f32, f16, bf16, q8_0, q4_k, q6_k, q4_k_m (default: tiny and tiny-v2lite f16, demo,"
      " v3-slice and r1 q4_k_m); norms, router and expert bias stay f32");
  cmd->add_option("--mla", o->mla,
                  "MLA convention: combined (attn_kv_b) or split (attn_k_b + attn_v_b, head_count_kv 1)")
      ->capture_default_str();
  o->layers_opt = cmd->add_option("--layers", o->layers, "Total blocks (default: the preset's; v3-slice 2)");
  o->dense_opt = cmd->add_option("--dense-layers", o->dense_layers,
                                 "Leading dense blocks (default: the preset's, 1, at most --layers)");
  o->experts_opt = cmd->add_option(
      "--experts", o->experts, "Routed experts per MoE block (groups and active counts are adjusted to fit)");
  o->vocab_opt =
      cmd->add_option("--vocab", o->vocab, "Vocabulary size, at least 271 (256 bytes + 15 specials)");
  cmd->add_option("--seed", o->seed, "Random seed of the weights")->capture_default_str();
  cmd->add_flag("-q,--quiet", o->quiet, "No progress bar");
  cmd->add_flag("--header-only", o->header_only,
                "Write the metadata and tensor list only, without tensor data (onecard.header_only = true): "
                "real shapes for `onecard inspect FILE --plan`; models cannot be loaded from it");
  return [o] { return run_gen(*o); };
}

}  // namespace onecard::app
