// `onecard quantize IN OUT --type T`: a copy of a GGUF model with its weights in another type.
#include <fmt/format.h>

#include "app/commands.h"
#include "base/format.h"
#include "model/quantize_file.h"

namespace onecard::app {
namespace {

struct QuantizeOptions {
  std::string in, out, type = "q4_k_m";
  int threads = 0;
};

int run_quantize(const QuantizeOptions& o) {
  auto fail = [](const Error& e) {
    fmt::print(stderr, "onecard quantize: {}\n", e.message());
    return 1;
  };
  auto scheme = model::parse_scheme(o.type);
  if (!scheme.ok()) return fail(scheme.error());
  model::QuantizeFileOptions qo;
  qo.scheme = scheme.value();
  qo.n_threads = o.threads;
  auto r = model::quantize_file(o.in, o.out, qo);
  if (!r.ok()) return fail(r.error());
  fmt::print(stderr, "onecard quantize: {} -> {}: {} tensors converted, {} copied, {} -> {} in {:.1f} s\n",
             o.in, o.out, r->tensors_converted, r->tensors_copied, human_bytes(r->bytes_in),
             human_bytes(r->bytes_out), r->seconds);
  return 0;
}

}  // namespace

Runner add_quantize(CLI::App& app) {
  auto o = std::make_shared<QuantizeOptions>();
  auto* cmd = app.add_subcommand("quantize", "Write a copy of a GGUF model with its weights in another type");
  cmd->add_option("input", o->in, "Source GGUF")->required();
  cmd->add_option("output", o->out, "Destination GGUF")->required();
  cmd->add_option(
         "--type", o->type,
         "f32, f16, bf16, q8_0, q4_0, q2_k, q3_k, q4_k, q5_k, q6_k or q4_k_m (Q4_K with Q6_K for output, "
         "attn_kv_b/attn_v_b and ffn_down); norms and the router stay F32")
      ->capture_default_str();
  cmd->add_option("-t,--threads", o->threads, "Threads (0: one per logical CPU)")->capture_default_str();
  return [o] { return run_quantize(*o); };
}

}  // namespace onecard::app
