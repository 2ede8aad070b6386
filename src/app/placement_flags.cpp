#include "app/placement_flags.h"

#include <algorithm>
#include <memory>
#include <unordered_map>

#include <fmt/format.h>

#include "base/format.h"
#include "base/log.h"
#include "model/hparams.h"

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

Result<std::optional<GpuProbe>> gpu_requested(const PlacementFlags& flags, const std::string& model_path) {
  ONECARD_ASSIGN_OR_RETURN(const std::optional<uint64_t> budget, flags.budget());
  ONECARD_ASSIGN_OR_RETURN(const auto rules, flags.rules());
  std::string flag = budget ? "--gpu-memory" : "";
  for (const auto& r : rules) {
    if (flag.empty() && r.device == runtime::Device::kCuda) flag = fmt::format("--place '{}'", r.rule);
  }
  if (flag.empty()) return std::optional<GpuProbe>();
  GpuProbe gpu = probe_gpu();
  if (!gpu.found) {
    return make_error(
        "{} asks for the GPU, but {}; `onecard inspect {} --plan --gpu-memory SIZE` plans for one", flag,
        gpu.why_none, model_path);
  }
  return std::optional<GpuProbe>(std::move(gpu));
}

Result<std::function<backend::Device(std::string_view)>> gpu_placement(const PlacementFlags& flags,
                                                                       const std::string& model_path,
                                                                       uint32_t n_ctx, uint32_t n_batch,
                                                                       model::KvType kv) {
  using DeviceOf = std::function<backend::Device(std::string_view)>;
  ONECARD_ASSIGN_OR_RETURN(const std::optional<GpuProbe> wanted, gpu_requested(flags, model_path));
  if (!wanted) return DeviceOf();
  const GpuProbe& gpu = *wanted;
  ONECARD_ASSIGN_OR_RETURN(const std::optional<uint64_t> budget, flags.budget());
  ONECARD_ASSIGN_OR_RETURN(auto rules, flags.rules());
  ONECARD_ASSIGN_OR_RETURN(const gguf::File file, gguf::File::open_header(model_path));
  ONECARD_ASSIGN_OR_RETURN(const model::HParams hp, model::read_hparams(file));
  runtime::PlanRequest rq;
  rq.tensors = runtime::tensor_descs(file);
  rq.hp = hp;
  rq.kv_bytes_per_value = kv == model::KvType::kF32 ? 4 : 2;
  rq.n_ctx = hp.n_ctx_train > 0 ? std::min<uint64_t>(n_ctx, hp.n_ctx_train) : n_ctx;
  rq.n_batch = n_batch;
  rq.rules = std::move(rules);
  if (budget) {
    rq.gpu_budget = budget;
    rq.budget_source = fmt::format("--gpu-memory {}", flags.gpu_memory);
  } else {
    rq.gpu_budget = gpu.memory_free - std::min(gpu.memory_free, runtime::kGpuMemoryMargin);
    rq.budget_source = fmt::format("{}: {} free, less a {} margin", gpu.name, human_bytes(gpu.memory_free),
                                   human_bytes(runtime::kGpuMemoryMargin));
  }
  ONECARD_ASSIGN_OR_RETURN(const runtime::PlacementPlan plan, runtime::plan_placement(rq));
  for (const std::string& line : runtime::describe_plan(plan)) log::info("{}", line);
  auto devices = std::make_shared<std::unordered_map<std::string, backend::Device>>();
  for (const runtime::PlacedTensor& t : plan.tensors) {
    (*devices)[t.name] =
        t.device == runtime::Device::kCuda ? backend::Device{backend::DeviceKind::kCuda, 0} : backend::kCpu;
  }
  return DeviceOf([devices](std::string_view name) {
    const auto it = devices->find(std::string(name));
    return it == devices->end() ? backend::kCpu : it->second;
  });
}

}  // namespace onecard::app
