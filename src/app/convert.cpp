// `onecard convert HF_DIR -o OUT.gguf`: a Hugging Face DeepSeek checkpoint (sharded safetensors, bf16 or fp8
// block-scaled) as a deepseek2 GGUF in the weight type asked for.
#include <memory>
#include <string>
#include <string_view>

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
  if (r->fp8_as_f16 > 0)
    fmt::print(stderr,
               "onecard convert: {} FP8 tensors written as F16 instead of BF16 (same size; their values "
               "fit F16, which keeps them 8x more exactly)\n",
               r->fp8_as_f16);
  return 0;
}

// The weight types from the scheme table, so that the list cannot go stale.
std::string type_help() {
  std::string help =
      "Weight type or mix. Norms, biases and the router stay F32; rows that no block of the type "
      "divides fall back (Q4_0, Q8_0, IQ4_NL or F16). Mixes follow llama-quantize:";
  // bf16 is the one scheme convert applies differently from quantize (convert/output_type.h).
  constexpr std::string_view kBf16 =
      "every matrix BF16, except FP8 ones whose block scales show they fit F16 (every block's largest "
      "value in 2^-14..4096): those F16, of the same size, whose 3 more mantissa bits keep the FP8 values "
      "8x more exactly";
  for (model::WeightScheme s : model::all_schemes())
    help += fmt::format("\n  {:<7} {}", model::scheme_name(s),
                        s == model::WeightScheme::kBF16 ? kBf16 : model::scheme_description(s));
  return help;
}

}  // namespace

Runner add_convert(CLI::App& app) {
  auto o = std::make_shared<ConvertCliOptions>();
  auto* cmd = app.add_subcommand("convert", "Convert a Hugging Face DeepSeek checkpoint folder to a GGUF");
  cmd->add_option("input", o->in, "Checkpoint folder (config.json, *.safetensors, tokenizer.json)")
      ->required();
  cmd->add_option("-o,--output", o->out, "Destination GGUF")->required();
  cmd->add_option("--type", o->type, type_help())->capture_default_str();
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
