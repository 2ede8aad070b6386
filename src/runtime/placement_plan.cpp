#include "runtime/placement_plan.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <map>

#include <fmt/format.h>

#include "base/format.h"

namespace onecard::runtime {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The order in which the default set fills the budget: the small tensors every layer needs first, so that an
// overflow names the large tensor a --place rule would best move.
constexpr std::array kDefaultOrder = {Category::kNorm,          Category::kRouter,   Category::kAttention,
                                      Category::kSharedExperts, Category::kDenseFfn, Category::kOutputHead};

// Sums the budget as tensors are added and names what did not fit.
class Budget {
 public:
  Budget(uint64_t limit, uint64_t reserved) : limit_(limit), used_(reserved) {}
  bool fits(uint64_t bytes) const { return bytes <= limit_ && used_ <= limit_ - bytes; }
  void add(uint64_t bytes) { used_ += bytes; }
  uint64_t used() const { return used_; }
  uint64_t left() const { return limit_ - std::min(limit_, used_); }

 private:
  uint64_t limit_, used_;
};

}  // namespace

std::string_view device_name(Device d) {
  return d == Device::kCuda ? "cuda" : "cpu";
}

Result<PlaceRule> parse_place_rule(std::string_view rule) {
  const size_t eq = rule.rfind('=');
  if (eq == std::string_view::npos)
    return make_error("--place '{}': expected REGEX=DEVICE, e.g. 'ffn_.*_exps.*=cpu'", rule);
  const std::string_view regex = rule.substr(0, eq), device = rule.substr(eq + 1);
  if (regex.empty()) return make_error("--place '{}': the regex before '=' is empty", rule);
  PlaceRule r;
  r.rule = std::string(rule);
  const std::string d = lower(device);
  if (d == "cpu") {
    r.device = Device::kCpu;
  } else if (d == "cuda" || d == "cuda0") {
    r.device = Device::kCuda;
  } else if (d.starts_with("cuda")) {
    return make_error("--place '{}': device '{}': one GPU is supported (cuda or cuda0)", rule, device);
  } else {
    return make_error("--place '{}': unknown device '{}' (valid: cpu, cuda, cuda0)", rule, device);
  }
  auto pattern = model::compile_name_pattern(regex);
  if (!pattern.ok())
    return make_error("--place '{}': bad regex '{}': {}", rule, regex, pattern.error().message());
  r.pattern = std::move(pattern).value();
  return r;
}

std::string_view category_name(Category c) {
  switch (c) {
    case Category::kAttention:
      return "attention";
    case Category::kNorm:
      return "norms";
    case Category::kRouter:
      return "router";
    case Category::kSharedExperts:
      return "shared experts";
    case Category::kDenseFfn:
      return "dense FFN";
    case Category::kOutputHead:
      return "output head";
    case Category::kEmbedding:
      return "token embeddings";
    case Category::kRoutedExperts:
      return "routed experts";
    case Category::kUnused:
      return "MTP (unused)";
    case Category::kOther:
      return "other";
  }
  return "?";
}

Category classify_tensor(std::string_view name, uint32_t n_layer_decode, int* layer) {
  *layer = -1;
  if (name == "token_embd.weight") return Category::kEmbedding;
  if (name == "output.weight") return Category::kOutputHead;
  if (name == "output_norm.weight") return Category::kNorm;
  constexpr std::string_view kPrefix = "blk.";
  if (!name.starts_with(kPrefix)) return Category::kOther;
  const std::string_view rest = name.substr(kPrefix.size());
  unsigned n = 0;
  const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), n);
  if (ec != std::errc() || end == rest.data() + rest.size() || *end != '.') return Category::kOther;
  *layer = static_cast<int>(n);
  if (n >= n_layer_decode) return Category::kUnused;
  std::string_view base(end + 1, static_cast<size_t>(rest.data() + rest.size() - end - 1));
  base = base.substr(0, base.find('.'));
  if (base.ends_with("_norm")) return Category::kNorm;
  if (base.starts_with("attn_")) return Category::kAttention;
  if (base == "ffn_gate_inp" || base == "exp_probs_b") return Category::kRouter;
  if (base.ends_with("_shexp")) return Category::kSharedExperts;
  if (base.ends_with("_exps")) return Category::kRoutedExperts;
  if (base == "ffn_gate" || base == "ffn_up" || base == "ffn_down") return Category::kDenseFfn;
  return Category::kOther;
}

std::vector<TensorDesc> tensor_descs(const gguf::File& f) {
  std::vector<TensorDesc> out;
  out.reserve(f.tensors().size());
  for (const auto& t : f.tensors()) out.push_back({std::string(t.name), t.n_bytes});
  return out;
}

uint64_t PlacementPlan::kv_token_bytes() const {
  return kv_layer_token_bytes * kv_device.size();
}

uint64_t PlacementPlan::bytes(Device d, Category c) const {
  uint64_t sum = 0;
  for (const auto& t : tensors)
    if (t.device == d && t.category == c) sum += t.bytes;
  return sum;
}

size_t PlacementPlan::count(Device d, Category c) const {
  return static_cast<size_t>(std::count_if(tensors.begin(), tensors.end(), [&](const PlacedTensor& t) {
    return t.device == d && t.category == c;
  }));
}

uint64_t PlacementPlan::weights(Device d) const {
  uint64_t sum = 0;
  for (const auto& t : tensors)
    if (t.device == d) sum += t.bytes;
  return sum;
}

uint64_t PlacementPlan::kv_bytes(Device d) const {
  const auto layers = static_cast<uint64_t>(std::count(kv_device.begin(), kv_device.end(), d));
  return layers * kv_layer_token_bytes * n_ctx * n_seq;
}

uint64_t PlacementPlan::total(Device d) const {
  return weights(d) + kv_bytes(d) + (d == Device::kCuda ? workspace : 0);
}

uint64_t workspace_bytes(const model::HParams& hp, uint32_t n_batch) {
  const uint64_t heads = hp.n_head;
  // Scores of the absorbed attention are formed per block of cached positions, never for the whole context.
  constexpr uint64_t kScoreBlock = 128;
  const uint64_t per_token = 4ull * hp.n_embd               // residual, normed input, attention and FFN out
                             + heads * hp.qk_head_dim()     // queries
                             + 2 * heads * hp.kv_lora_rank  // absorbed queries and latent outputs
                             + heads * hp.v_head            // per-head outputs
                             + heads * kScoreBlock          // one block of scores
                             +
                             2ull * std::max<uint64_t>(hp.n_ff, uint64_t{hp.n_ff_exp} * hp.n_expert_shared) +
                             hp.n_vocab;  // logits
  return per_token * n_batch * sizeof(float);
}

Result<PlacementPlan> plan_placement(const PlanRequest& rq) {
  const model::HParams& hp = rq.hp;
  PlacementPlan plan;
  plan.kv_layer_token_bytes = uint64_t{hp.kv_cache_width()} * rq.kv_bytes_per_value;
  plan.kv_bytes_per_value = rq.kv_bytes_per_value;
  plan.n_ctx = rq.n_ctx;
  plan.n_seq = rq.n_seq;
  plan.n_batch = rq.n_batch;
  plan.budget = rq.gpu_budget;
  plan.budget_source = rq.budget_source;
  plan.kv_device.assign(hp.n_layer_decode(), Device::kCpu);

  std::vector<bool> rule_used(rq.rules.size(), false);
  plan.tensors.reserve(rq.tensors.size());
  for (const TensorDesc& t : rq.tensors) {
    PlacedTensor p;
    p.name = t.name;
    p.bytes = t.bytes;
    p.category = classify_tensor(t.name, hp.n_layer_decode(), &p.layer);
    for (size_t i = 0; i < rq.rules.size(); ++i) {
      if (!model::matches_all(*rq.rules[i].pattern, t.name)) continue;
      p.rule = static_cast<int>(i);
      p.device = rq.rules[i].device;
      rule_used[i] = true;
      break;
    }
    plan.tensors.push_back(std::move(p));
  }
  for (size_t i = 0; i < rq.rules.size(); ++i) {
    if (rq.rules[i].device == Device::kCuda && !rq.gpu_budget)
      return make_error("--place '{}': places tensors on cuda, but {}", rq.rules[i].rule, rq.no_gpu_reason);
    if (!rule_used[i]) plan.unmatched_rules.push_back(rq.rules[i].rule);
  }
  if (!rq.gpu_budget) return plan;

  const uint64_t limit = *rq.gpu_budget;
  const uint64_t kv_layer_bytes = plan.kv_layer_token_bytes * rq.n_ctx * rq.n_seq;
  const auto kv_layer = [&](const PlacedTensor& t) {
    return t.layer >= 0 && t.layer < static_cast<int>(plan.kv_device.size()) &&
           t.name == fmt::format("blk.{}.attn_kv_a_mqa.weight", t.layer);
  };
  const auto free_to_place = [](const PlacedTensor& t) {
    return t.rule < 0 && t.category != Category::kUnused;
  };

  const uint64_t workspace = workspace_bytes(hp, rq.n_batch);
  // Everything the rules leave free, when it all fits with the cache and the workspace.
  uint64_t whole = workspace;
  size_t whole_tensors = 0;
  for (const auto& t : plan.tensors) {
    const bool gpu = t.rule >= 0 ? t.device == Device::kCuda : t.category != Category::kUnused;
    if (!gpu) continue;
    whole += t.bytes + (kv_layer(t) ? kv_layer_bytes : 0);
    ++whole_tensors;
  }
  if (whole_tensors == 0) return plan;  // the rules keep everything on the CPU
  if (whole <= limit) {
    plan.whole_model = true;
    plan.workspace = workspace;
    for (auto& t : plan.tensors) {
      if (free_to_place(t)) t.device = Device::kCuda;
      if (kv_layer(t) && t.device == Device::kCuda) plan.kv_device[t.layer] = Device::kCuda;
    }
    return plan;
  }

  Budget budget(limit, workspace);
  for (const auto& t : plan.tensors) {
    if (t.rule < 0 || t.device != Device::kCuda) continue;
    if (!budget.fits(t.bytes)) {
      return make_error(
          "--place '{}' puts tensor '{}' ({}) on cuda, but the GPU budget of {} ({}) is exhausted: {} placed "
          "before it, the compute workspace included",
          rq.rules[t.rule].rule, t.name, human_bytes(t.bytes), human_bytes(limit), rq.budget_source,
          human_bytes(budget.used()));
    }
    budget.add(t.bytes);
  }
  for (Category c : kDefaultOrder) {
    for (auto& t : plan.tensors) {
      if (!free_to_place(t) || t.category != c) continue;
      if (!budget.fits(t.bytes)) {
        return make_error(
            "tensor '{}' ({}, {}) does not fit the GPU budget of {} ({}): {} placed before it, the compute "
            "workspace included; raise --gpu-memory or keep some on the CPU with --place (e.g. "
            "'output\\.weight=cpu' or 'blk\\.[3-6][0-9]\\.attn_.*=cpu')",
            t.name, category_name(t.category), human_bytes(t.bytes), human_bytes(limit), rq.budget_source,
            human_bytes(budget.used()));
      }
      budget.add(t.bytes);
      t.device = Device::kCuda;
    }
  }
  uint64_t kv_layers = 0;
  for (const auto& t : plan.tensors) {
    if (kv_layer(t) && t.device == Device::kCuda) {
      plan.kv_device[t.layer] = Device::kCuda;
      ++kv_layers;
    }
  }
  if (!budget.fits(kv_layers * kv_layer_bytes)) {
    const uint64_t per_token = kv_layers * plan.kv_layer_token_bytes * rq.n_seq;
    return make_error(
        "the KV cache of {} tokens x {} sequence(s) ({}, {} bytes per token) does not fit the GPU budget of "
        "{} "
        "({}): {} is left after the weights and the compute workspace, enough for {} tokens; lower "
        "--ctx-size "
        "or raise --gpu-memory",
        rq.n_ctx, rq.n_seq, human_bytes(kv_layers * kv_layer_bytes), kv_layers * plan.kv_layer_token_bytes,
        human_bytes(limit), rq.budget_source, human_bytes(budget.left()),
        per_token ? budget.left() / per_token : 0);
  }
  budget.add(kv_layers * kv_layer_bytes);
  plan.workspace = workspace;

  // Whole layers only: a layer half on each side would wait for the CPU all the same.
  std::map<int, uint64_t> expert_layers;
  for (const auto& t : plan.tensors)
    if (free_to_place(t) && t.category == Category::kRoutedExperts) expert_layers[t.layer] += t.bytes;
  for (const auto& [layer, bytes] : expert_layers) {
    if (!budget.fits(bytes)) {
      if (plan.smallest_expert_layer_left == 0 || bytes < plan.smallest_expert_layer_left)
        plan.smallest_expert_layer_left = bytes;
      continue;
    }
    budget.add(bytes);
    plan.expert_layers_on_gpu.push_back(layer);
    for (auto& t : plan.tensors)
      if (free_to_place(t) && t.category == Category::kRoutedExperts && t.layer == layer)
        t.device = Device::kCuda;
  }
  return plan;
}

namespace {

// "3-5, 9" for sorted layer numbers.
std::string layer_ranges(const std::vector<int>& layers) {
  std::string out;
  for (size_t i = 0; i < layers.size();) {
    size_t j = i;
    while (j + 1 < layers.size() && layers[j + 1] == layers[j] + 1) ++j;
    out += fmt::format("{}{}", out.empty() ? "" : ", ", layers[i]);
    if (j > i) out += fmt::format("-{}", layers[j]);
    i = j + 1;
  }
  return out;
}

}  // namespace

std::vector<std::string> describe_plan(const PlacementPlan& plan) {
  std::vector<std::string> lines;
  const auto row = [&lines](Device d, std::string what, std::string count, uint64_t bytes) {
    lines.push_back(
        fmt::format("  {:<6} {:<50} {:>7} {:>11}", device_name(d), what, count, human_bytes(bytes)));
  };
  const uint64_t kv_tokens = plan.n_ctx * plan.n_seq;
  lines.push_back(plan.budget ? fmt::format("Placement plan for a GPU budget of {} ({})",
                                            human_bytes(*plan.budget), plan.budget_source)
                              : std::string("Placement plan: CPU only"));
  lines.push_back(fmt::format("  {:<6} {:<50} {:>7} {:>11}", "device", "category", "tensors", "size"));
  for (Device d : {Device::kCuda, Device::kCpu}) {
    if ((d == Device::kCuda && !plan.budget) || plan.total(d) == 0) continue;
    for (int c = 0; c < kCategoryCount; ++c) {
      const auto cat = static_cast<Category>(c);
      const size_t n = plan.count(d, cat);
      if (n == 0) continue;
      std::string what(category_name(cat));
      if (cat == Category::kRoutedExperts) {
        std::vector<int> layers;
        for (const auto& t : plan.tensors)
          if (t.device == d && t.category == cat && (layers.empty() || layers.back() != t.layer))
            layers.push_back(t.layer);
        std::sort(layers.begin(), layers.end());
        layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
        what += fmt::format(" ({} layer{}: {})", layers.size(), layers.size() == 1 ? "" : "s",
                            layer_ranges(layers));
      }
      row(d, what, fmt::format("{}", n), plan.bytes(d, cat));
    }
    const uint64_t kv = plan.kv_bytes(d);
    if (kv > 0) {
      const auto layers = static_cast<uint64_t>(std::count(plan.kv_device.begin(), plan.kv_device.end(), d));
      row(d,
          fmt::format("KV cache ({} tokens x {} B, {} layers, {})", kv_tokens,
                      layers * plan.kv_layer_token_bytes, layers,
                      plan.kv_bytes_per_value == 2 ? "bf16" : "f32"),
          "", kv);
    }
    if (d == Device::kCuda && plan.workspace > 0)
      row(d, fmt::format("compute workspace (batch of {} tokens)", plan.n_batch), "", plan.workspace);
    row(d, "total", "", plan.total(d));
  }
  if (plan.budget) {
    const uint64_t gpu = plan.total(Device::kCuda);
    lines.push_back(fmt::format("GPU: {} of {}: fits, {} spare", human_bytes(gpu), human_bytes(*plan.budget),
                                human_bytes(*plan.budget - std::min(*plan.budget, gpu))));
    std::string spare = fmt::format("Spare budget: first the KV cache of the {} tokens asked for ({})",
                                    kv_tokens, human_bytes(plan.kv_bytes(Device::kCuda)));
    if (plan.whole_model) {
      const uint64_t kept = plan.weights(Device::kCpu) - plan.bytes(Device::kCpu, Category::kUnused);
      spare += kept == 0 ? "; then everything else: the whole model is on the GPU"
                         : "; then everything the --place rules leave free";
    } else if (!plan.expert_layers_on_gpu.empty()) {
      spare += fmt::format("; then routed-expert layers {}", layer_ranges(plan.expert_layers_on_gpu));
    } else if (plan.smallest_expert_layer_left > 0) {
      spare += fmt::format("; no routed-expert layer fits the rest (the smallest takes {})",
                           human_bytes(plan.smallest_expert_layer_left));
    }
    lines.push_back(spare);
  }
  if (plan.budget && plan.count(Device::kCpu, Category::kEmbedding) > 0) {
    lines.push_back(
        "token embeddings stay on the CPU: a step looks up one row per token, and those rows, not the table, "
        "go to the GPU");
  }
  lines.push_back(
      fmt::format("CPU: {} of weights (the file's pages){}", human_bytes(plan.weights(Device::kCpu)),
                  plan.kv_bytes(Device::kCpu) > 0
                      ? fmt::format(" and {} of KV cache", human_bytes(plan.kv_bytes(Device::kCpu)))
                      : ""));
  for (const auto& r : plan.unmatched_rules)
    lines.push_back(fmt::format("warning: --place '{}' matches no tensor", r));
  return lines;
}

}  // namespace onecard::runtime
