// Options every command that runs a model shares, and loading the model with its tokenizer from them.
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "app/placement_flags.h"
#include "base/result.h"
#include "model/deepseek2.h"
#include "runtime/engine.h"
#include "runtime/session.h"
#include "text/tokenizer.h"

namespace onecard::app {

inline constexpr const char* kNoRepackHelp =
    "Keep Q2_K/Q4_K/Q6_K experts in the file's layout instead of repacking them at load for the AVX-512 VNNI "
    "or AVX2 kernels (no extra memory; slower prefill)";

struct ModelFlags {
  std::string path;
  int ctx = 4096;
  int batch = 512;
  int threads = 0;
  std::string kv_type = "bf16";
  bool no_repack = false;
  bool no_hugepages = false;
  bool prefault = false;
  std::string numa = "interleave";
  PlacementFlags placement;

  void add_to(CLI::App* cmd);
};

// What the model commands' help says of --gpu-memory and --place.
inline constexpr const char* kModelPlacementNote =
    "Either puts the model on the GPU by the plan that onecard inspect MODEL --plan prints (the routed "
    "experts stay on the CPU unless they fit); without them everything runs on the CPU";

struct LoadedModel {
  std::unique_ptr<model::DeepSeek2> model;
  std::unique_ptr<text::Tokenizer> tokenizer;
  model::KvType kv_type = model::KvType::kBF16;
};

// With --gpu-memory or a cuda --place rule, loads by the placement plan (gpu_placement).
Result<LoadedModel> load_model(const ModelFlags& flags);

// An engine over a loaded model for `parallel` sequences, with the flags' KV cache type.
std::unique_ptr<runtime::Engine> make_engine(const LoadedModel& m, int parallel = 1);

struct GenerationFlags {
  runtime::GenerateOptions options;
  void add_to(CLI::App* cmd);
};

// "prompt 12 tokens in 0.10 s (120.0 tok/s), generation 64 tokens in 1.00 s (64.0 tok/s), finish: length"
std::string timing_summary(const runtime::GenerationStats& s);

}  // namespace onecard::app
