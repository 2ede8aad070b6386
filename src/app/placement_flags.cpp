#include "app/placement_flags.h"

#include <fmt/format.h>

#include "base/format.h"

#ifdef ONECARD_HAVE_CUDA
#include "cuda/device.h"
#endif

namespace onecard::app {

GpuProbe probe_gpu() {
  GpuProbe p;
#ifdef ONECARD_HAVE_CUDA
  const auto devices = cuda::list_devices(&p.why_none);
  if (devices.empty()) {
    p.why_none = fmt::format("no usable CUDA device ({})", p.why_none);
    return p;
  }
  p.found = true;
  p.name = fmt::format("CUDA device 0 ({})", devices[0].name);
  p.memory_free = devices[0].memory_free;
  p.memory_total = devices[0].memory_total;
#else
  p.why_none =
      "this build has no CUDA backend (nvcc was not found at configure time, or ONECARD_CUDA was OFF)";
#endif
  return p;
}

void PlacementFlags::add_to(CLI::App* cmd, const std::string& note) {
  cmd->add_option("--gpu-memory", gpu_memory,
                  "GPU memory the placement may use, e.g. 24GiB, 512MiB, 1.5GB (default: the card's free "
                  "memory minus 512 MiB). " +
                      note);
  cmd->add_option("--place", place,
                  "REGEX=DEVICE: tensors whose whole GGUF name matches REGEX go to DEVICE (cpu or cuda); "
                  "repeatable, the first matching rule wins, e.g. 'ffn_.*_exps.*=cpu'. " +
                      note);
}

Result<std::optional<uint64_t>> PlacementFlags::budget() const {
  if (gpu_memory.empty()) return std::optional<uint64_t>();
  auto bytes = parse_bytes(gpu_memory);
  if (!bytes.ok()) return make_error("--gpu-memory: {}", bytes.error().message());
  if (bytes.value() == 0) return make_error("--gpu-memory: '{}' is zero", gpu_memory);
  return std::optional<uint64_t>(bytes.value());
}

Result<std::vector<runtime::PlaceRule>> PlacementFlags::rules() const {
  std::vector<runtime::PlaceRule> out;
  for (const auto& r : place) {
    ONECARD_ASSIGN_OR_RETURN(runtime::PlaceRule rule, runtime::parse_place_rule(r));
    out.push_back(std::move(rule));
  }
  return out;
}

Status check_cpu_only(const PlacementFlags& flags, const std::string& model_path) {
  ONECARD_ASSIGN_OR_RETURN(const std::optional<uint64_t> budget, flags.budget());
  ONECARD_ASSIGN_OR_RETURN(const auto rules, flags.rules());
  std::string flag = budget ? "--gpu-memory" : "";
  for (const auto& r : rules) {
    if (flag.empty() && r.device == runtime::Device::kCuda) flag = fmt::format("--place '{}'", r.rule);
  }
  if (flag.empty()) return {};
  const GpuProbe gpu = probe_gpu();
  if (!gpu.found) {
    return make_error(
        "{} asks for the GPU, but {}; `onecard inspect {} --plan --gpu-memory SIZE` plans for one", flag,
        gpu.why_none, model_path);
  }
  return make_error(
      "{} asks for the GPU ({} found), but the forward pass of this build runs on the CPU only; `onecard "
      "inspect {} --plan` shows the placement it would use",
      flag, gpu.name, model_path);
}

}  // namespace onecard::app
