// `onecard quantize IN OUT [TYPE] [--imatrix FILE] [--override REGEX=TYPE]...`: a copy of a GGUF model with
// its weights in another type or mix.
#include <fmt/format.h>

#include "app/commands.h"
#include "base/format.h"
#include "model/imatrix_file.h"
#include "model/quantize_file.h"

namespace onecard::app {
namespace {

struct QuantizeOptions {
  std::string in, out, type_arg, type_flag, imatrix;
  std::vector<std::string> overrides;
  int threads = 0;
};

int run_quantize(const QuantizeOptions& o) {
  auto fail = [](const Error& e) {
    fmt::print(stderr, "onecard quantize: {}\n", e.message());
    return 1;
  };
  if (!o.type_arg.empty() && !o.type_flag.empty() && o.type_arg != o.type_flag)
    return fail(make_error("two types given: '{}' and --type '{}'", o.type_arg, o.type_flag));
  const std::string type = !o.type_arg.empty() ? o.type_arg : !o.type_flag.empty() ? o.type_flag : "q4_k_m";
  auto scheme = model::parse_scheme(type);
  if (!scheme.ok()) return fail(scheme.error());
  model::QuantizeFileOptions qo;
  qo.scheme = scheme.value();
  qo.n_threads = o.threads;
  for (const auto& rule : o.overrides) {
    auto parsed = model::parse_override(rule);
    if (!parsed.ok()) return fail(parsed.error());
    qo.overrides.push_back(std::move(parsed.value()));
  }
  model::Imatrix imatrix;
  if (!o.imatrix.empty()) {
    auto m = model::read_imatrix(o.imatrix);
    if (!m.ok()) return fail(m.error());
    imatrix = std::move(m.value());
    qo.imatrix = &imatrix;
    qo.imatrix_path = o.imatrix;
    fmt::print(stderr, "onecard quantize: imatrix {}: {} entries from {} chunks\n", o.imatrix,
               imatrix.entries.size(), imatrix.chunk_count);
  }
  qo.on_warning = [](const std::string& w) { fmt::print(stderr, "onecard quantize: warning: {}\n", w); };
  auto r = model::quantize_file(o.in, o.out, qo);
  if (!r.ok()) return fail(r.error());
  for (const auto& f : r->fallbacks) fmt::print(stderr, "onecard quantize: fallback: {}\n", f);
  fmt::print(
      stderr,
      "onecard quantize: {} -> {} ({}): {} tensors converted, {} copied, {} overridden, {} fell back to "
      "another type for their row width; {} -> {} in {:.1f} s\n",
      o.in, o.out, model::scheme_name(qo.scheme), r->tensors_converted, r->tensors_copied,
      r->tensors_overridden, r->tensors_fallback, human_bytes(r->bytes_in), human_bytes(r->bytes_out),
      r->seconds);
  if (qo.imatrix != nullptr)
    fmt::print(
        stderr,
        "onecard quantize: importance used for {} tensors, {} quantized without (no entry), {} experts "
        "without calibration tokens\n",
        r->tensors_with_imatrix, r->tensors_without_imatrix, r->experts_without_tokens);
  return 0;
}

std::string type_help() {
  std::string help =
      "Weight type or mix (default q4_k_m). Norms, biases and the router stay F32; rows that "
      "no block of the type divides fall back (Q4_0, Q8_0, IQ4_NL or F16). Mixes follow "
      "llama-quantize (the use-more-bits layers: the first and last 1/8 and every third between):";
  for (model::WeightScheme s : model::all_schemes())
    help += fmt::format("\n  {:<7} {}", model::scheme_name(s), model::scheme_description(s));
  return help;
}

}  // namespace

Runner add_quantize(CLI::App& app) {
  auto o = std::make_shared<QuantizeOptions>();
  auto* cmd = app.add_subcommand("quantize", "Write a copy of a GGUF model with its weights in another type");
  cmd->add_option("input", o->in, "Source GGUF")->required();
  cmd->add_option("output", o->out, "Destination GGUF")->required();
  cmd->add_option("type", o->type_arg, type_help());
  cmd->add_option("--type", o->type_flag, "The type, as a flag (the same names)");
  cmd->add_option(
      "--imatrix", o->imatrix,
      "Importance matrix (`onecard imatrix` or llama-imatrix GGUF): weights each matrix's columns, "
      "per expert, in the quantizers' error; recorded as quantize.imatrix.*");
  cmd->add_option(
         "--override", o->overrides,
         "REGEX=TYPE, repeatable: tensors whose whole name matches REGEX (ECMAScript) get the ggml "
         "TYPE (q8_0, q6_k, q5_k, q4_k, q3_k, q2_k, q4_0, iq4_xs, iq4_nl, f16, bf16, f32); the first "
         "matching rule wins, before the mix's rules")
      ->allow_extra_args(false);
  cmd->add_option("-t,--threads", o->threads, "Threads (0: one per logical CPU)")->capture_default_str();
  return [o] { return run_quantize(*o); };
}

}  // namespace onecard::app
