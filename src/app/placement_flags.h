// The GPU placement flags (`--gpu-memory`, `--place`) and the GPU they would use: parsed the same way by
// `onecard inspect --plan`, which plans with them, and by the model commands, which refuse them while the
// forward pass runs on the CPU only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "base/result.h"
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

// For the model commands, before loading: a request for the GPU fails, naming the flag and why (no usable
// device, or this build's forward pass running on the CPU only); cpu rules alone are accepted.
Status check_cpu_only(const PlacementFlags& flags, const std::string& model_path);

}  // namespace onecard::app
