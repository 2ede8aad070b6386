// The placement plan: which device holds each tensor of a model and its MLA KV cache, from `--place
// REGEX=DEVICE` rules over tensor names and a GPU memory budget. The default follows the KTransformers split
// (DESIGN.md, "GPU hybrid"): attention weights and the KV cache, norms, router, shared experts, dense blocks
// and the output head on the GPU; the routed experts (~95% of the bytes) on the CPU. Spare budget goes to
// the KV cache of the context asked for first, then to whole routed-expert layers; when everything fits,
// everything goes to the GPU. The plan reads shapes and types only, so it works on a header-only file.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "gguf/file.h"
#include "model/hparams.h"
#include "model/weight_scheme.h"

namespace onecard::runtime {

enum class Device { kCpu, kCuda };
std::string_view device_name(Device d);  // "cpu", "cuda"

// What the CUDA context's later allocations (cuBLAS workspaces, graphs) and fragmentation take beyond the
// free memory measured before loading: the default budget is the card's free memory minus this.
inline constexpr uint64_t kGpuMemoryMargin = uint64_t{512} << 20;

// `--place REGEX=DEVICE`: tensors whose whole GGUF name matches REGEX (ECMAScript) go to DEVICE (cpu, cuda
// or cuda0; one GPU is supported); the first matching rule wins, as for `quantize --override`.
struct PlaceRule {
  std::string rule;  // as given, for messages
  std::shared_ptr<const model::OverridePattern> pattern;
  Device device = Device::kCpu;
};
// Fails naming the rule: no '=', an empty or malformed regex, an unknown device.
Result<PlaceRule> parse_place_rule(std::string_view rule);

enum class Category {
  kAttention,
  kNorm,
  kRouter,
  kSharedExperts,
  kDenseFfn,
  kOutputHead,
  kEmbedding,
  kRoutedExperts,
  kUnused,  // MTP blocks past the decoded ones: never read by plain decoding
  kOther,
};
inline constexpr int kCategoryCount = 10;
std::string_view category_name(Category c);
// The category of a deepseek2 tensor and its block (-1 outside the blocks).
Category classify_tensor(std::string_view name, uint32_t n_layer_decode, int* layer);

struct TensorDesc {
  std::string name;
  uint64_t bytes = 0;
};
std::vector<TensorDesc> tensor_descs(const gguf::File& f);

struct PlanRequest {
  std::vector<TensorDesc> tensors;
  model::HParams hp;
  uint32_t kv_bytes_per_value = 2;  // bf16 2, f32 4 (--kv-type)
  uint64_t n_ctx = 4096;            // tokens of context per sequence
  uint32_t n_seq = 1;               // sequences with a full context each
  uint32_t n_batch = 512;           // tokens per forward step, for the workspace
  std::vector<PlaceRule> rules;
  // Bytes the GPU may hold; none: no GPU, everything on the CPU.
  std::optional<uint64_t> gpu_budget;
  std::string budget_source;  // where the budget came from, for the description ("--gpu-memory")
  std::string no_gpu_reason;  // why there is no budget, for the error of a cuda rule
};

struct PlacedTensor {
  std::string name;
  Category category = Category::kOther;
  int layer = -1;
  uint64_t bytes = 0;
  Device device = Device::kCpu;
  int rule = -1;  // index of the --place rule that chose the device; -1: the default plan
};

struct PlacementPlan {
  std::vector<PlacedTensor> tensors;
  std::vector<Device> kv_device;  // per decoded layer: its KV cache lives with its attention
  uint64_t kv_layer_token_bytes = 0;
  uint32_t kv_bytes_per_value = 2;
  uint64_t n_ctx = 0;
  uint32_t n_seq = 1;
  uint32_t n_batch = 0;
  uint64_t workspace = 0;  // on the GPU; 0 when the GPU holds nothing
  std::optional<uint64_t> budget;
  std::string budget_source;
  bool whole_model = false;                  // every tensor not ruled to the CPU is on the GPU
  std::vector<int> expert_layers_on_gpu;     // routed-expert layers that spare budget took
  uint64_t smallest_expert_layer_left = 0;   // bytes of the smallest routed-expert layer on the CPU
  std::vector<std::string> unmatched_rules;  // rules that matched no tensor

  uint64_t kv_token_bytes() const;  // every layer
  uint64_t bytes(Device d, Category c) const;
  size_t count(Device d, Category c) const;
  uint64_t weights(Device d) const;
  uint64_t kv_bytes(Device d) const;
  uint64_t total(Device d) const;  // weights, KV cache and (GPU) workspace
};

// Activations of one forward step of n_batch tokens in f32: what the GPU must hold besides weights and cache.
uint64_t workspace_bytes(const model::HParams& hp, uint32_t n_batch);

// Errors: a cuda rule without a GPU; rules or the default set needing more than the budget (naming the
// tensor that did not fit and the budget); a KV cache that does not fit (with the context that would).
Result<PlacementPlan> plan_placement(const PlanRequest& request);

// The plan as a table (device, category, tensors, GiB), the totals per device and where spare budget went.
std::vector<std::string> describe_plan(const PlacementPlan& plan);

}  // namespace onecard::runtime
