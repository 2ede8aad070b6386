// `onecard convert HF_DIR -o OUT.gguf`: a Hugging Face DeepSeek checkpoint (sharded safetensors, bf16 or fp8
// block-scaled) as a deepseek2 GGUF in the weight type asked for.
#include <memory>
#include <string>

#include <fmt/format.h>

#include "app/commands.h"
#include "base/format.h"
#include "convert/convert.h"

namespace onecard::app {
namespace {

struct ConvertCliOptions {
  std::string in, out, type = "bf16", mla = "combined", pre;
  bool keep_mtp = false, quiet = false;
  int threads = 0;
};

int run_convert(const ConvertCliOptions& o) {
  auto fail = [](const Error& e) {
    fmt::print(stderr, "onecard convert: {}\n", e.message());
    return 1;
  };
  auto scheme = model::parse_scheme(o.type);
  if (!scheme.ok()) return fail(scheme.error());
  if (o.mla != "combined" && o.mla != "split")
    return fail(make_error("--mla '{}' is not combined (attn_kv_b) or split (attn_k_b/attn_v_b)", o.mla));
  convert::ConvertOptions co;
  co.scheme = scheme.value();
  co.mapping.mla = o.mla == "split" ? model::MlaLayout::kSplit : model::MlaLayout::kCombined;
  co.mapping.keep_mtp = o.keep_mtp;
  co.pre = o.pre;
  co.n_threads = o.threads;
  co.progress = !o.quiet;
  auto r = convert::convert_checkpoint(o.in, o.out, co);
  if (!r.ok()) return fail(r.error());
  fmt::print(stderr, "onecard convert: {} -> {}: {} tensors, {} in {:.1f} s\n", o.in, o.out, r->tensors,
             human_bytes(r->bytes_out), r->seconds);
  return 0;
}

}  // namespace

Runner add_convert(CLI::App& app) {
  auto o = std::make_shared<ConvertCliOptions>();
  auto* cmd = app.add_subcommand("convert", "Convert a Hugging Face DeepSeek checkpoint folder to a GGUF");
  cmd->add_option("input", o->in, "Checkpoint folder (config.json, *.safetensors, tokenizer.json)")
      ->required();
  cmd->add_option("-o,--output", o->out, "Destination GGUF")->required();
  cmd->add_option(
         "--type", o->type,
         "f32, f16, bf16, q8_0, q4_0, q2_k, q3_k, q4_k, q5_k, q6_k or q4_k_m; norms and the router stay "
         "F32")
      ->capture_default_str();
  cmd->add_option("--mla", o->mla, "combined (attn_kv_b) or split (attn_k_b and attn_v_b)")
      ->capture_default_str();
  cmd->add_flag("--keep-mtp", o->keep_mtp, "Also convert the multi-token-prediction layers");
  cmd->add_option("--pre", o->pre,
                  "tokenizer.ggml.pre to write instead of recognising it from tokenizer.json");
  cmd->add_option("-t,--threads", o->threads, "Threads (0: one per logical CPU)")->capture_default_str();
  cmd->add_flag("-q,--quiet", o->quiet, "No progress line");
  return [o] { return run_convert(*o); };
}

}  // namespace onecard::app
