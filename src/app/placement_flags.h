// The GPU placement flags (`--gpu-memory`, `--place`) and the GPU they would use: parsed the same way by
// `onecard inspect --plan`, which prints the plan, and by the model commands, which load by it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "backend/device.h"
#include "base/result.h"
#include "model/kv_cache.h"
#include "runtime/placement_plan.h"

namespace onecard::app {

// The first CUDA device, or why there is none ("built without CUDA ...", or the driver's reason).
struct GpuProbe {
  std::string name;
  uint64_t memory_free = 0;
  uint64_t memory_total = 0;
  bool found = false;
  std::string why_none;
};
GpuProbe probe_gpu();

struct PlacementFlags {
  std::string gpu_memory;
  std::vector<std::string> place;

  // `note` ends both help texts (what the command does with the flags).
  void add_to(CLI::App* cmd, const std::string& note);
  // Errors name the flag and the rule or size.
  Result<std::optional<uint64_t>> budget() const;
  Result<std::vector<runtime::PlaceRule>> rules() const;
};

// The GPU the flags ask for (none: they ask for none), or an error naming the flag and why there is none
// usable.
Result<std::optional<GpuProbe>> gpu_requested(const PlacementFlags& flags, const std::string& model_path);

// For the model commands, before loading: where each tensor goes (LoadOptions::device_of), from the plan of
// the flags, the model's shapes and the context asked for; unset when the flags ask for no GPU (cpu rules
// alone run everything on the CPU). A request for the GPU without a usable one fails naming the flag and
// why; a plan that does not fit fails as the planner says (naming the tensor and the budget). The plan's
// table is logged.
Result<std::function<backend::Device(std::string_view)>> gpu_placement(const PlacementFlags& flags,
                                                                       const std::string& model_path,
                                                                       uint32_t n_ctx, uint32_t n_batch,
                                                                       model::KvType kv);

}  // namespace onecard::app
