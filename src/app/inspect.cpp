// `onecard inspect FILE`: what a GGUF holds and, for a DeepSeek file, what its hyper-parameters imply.
#include <algorithm>
#include <cstdio>
#include <map>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "app/placement_flags.h"
#include "base/cpu_features.h"
#include "base/cpu_topology.h"
#include "base/format.h"
#include "base/hugepages.h"
#include "base/numa.h"
#include "cpu/kernels.h"
#include "gguf/file.h"
#include "model/hparams.h"
#include "model/kv_cache.h"
#include "runtime/placement_plan.h"

#ifdef ONECARD_HAVE_CUDA
#include "cuda/device.h"
#endif

namespace onecard::app {
namespace {

struct InspectOptions {
  std::string path;
  bool system = false;
  bool all_tensors = false;
  bool json = false;
  size_t max_array = 8;
  bool plan = false;
  PlacementFlags placement;
  uint64_t ctx = 4096;
  uint32_t parallel = 1;
  uint32_t batch = 512;
  std::string kv_type = "bf16";
};

// The file line's note on a file whose tensor data is absent (open_header accepted it).
std::string data_note(const gguf::File& f) {
  if (f.has_data()) return "";
  if (f.has(gguf::kHeaderOnlyKey)) return ", header only (no tensor data)";
  return ", tensor data missing (truncated?)";
}

struct Plan {
  runtime::PlacementPlan plan;
  std::vector<std::string> notes;  // printed after the table
};

Result<Plan> make_plan(const gguf::File& f, const InspectOptions& o) {
  auto hp = model::read_hparams(f);
  if (!hp.ok()) return make_error("--plan needs a DeepSeek (deepseek2) file: {}", hp.error().message());
  ONECARD_ASSIGN_OR_RETURN(const model::KvType kv, model::kv_type_from_name(o.kv_type));
  ONECARD_ASSIGN_OR_RETURN(const std::optional<uint64_t> budget, o.placement.budget());
  if (o.ctx == 0 || o.parallel == 0 || o.batch == 0)
    return make_error("--ctx-size, --parallel and --batch-size must be at least 1");
  Plan out;
  runtime::PlanRequest rq;
  rq.tensors = runtime::tensor_descs(f);
  rq.hp = hp.value();
  rq.kv_bytes_per_value = kv == model::KvType::kF32 ? 4 : 2;
  rq.n_ctx = o.ctx;
  if (hp->n_ctx_train > 0 && o.ctx > hp->n_ctx_train) {
    rq.n_ctx = hp->n_ctx_train;
    out.notes.push_back(
        fmt::format("--ctx-size {} is capped at the model's context of {}, as the model "
                    "commands cap it",
                    o.ctx, hp->n_ctx_train));
  }
  rq.n_seq = o.parallel;
  rq.n_batch = o.batch;
  ONECARD_ASSIGN_OR_RETURN(rq.rules, o.placement.rules());
  if (budget) {
    rq.gpu_budget = budget;
    rq.budget_source = fmt::format("--gpu-memory {}", o.placement.gpu_memory);
  } else {
    const GpuProbe gpu = probe_gpu();
    if (gpu.found) {
      rq.gpu_budget = gpu.memory_free - std::min(gpu.memory_free, runtime::kGpuMemoryMargin);
      rq.budget_source =
          fmt::format("{}: {} free of {}, less a {} margin", gpu.name, human_bytes(gpu.memory_free),
                      human_bytes(gpu.memory_total), human_bytes(runtime::kGpuMemoryMargin));
    } else {
      rq.no_gpu_reason = fmt::format("{}, and no --gpu-memory was given to plan for one", gpu.why_none);
      out.notes.push_back(
          fmt::format("no GPU: {}; --gpu-memory SIZE (e.g. 24GiB) plans for one", gpu.why_none));
    }
  }
  ONECARD_ASSIGN_OR_RETURN(out.plan, runtime::plan_placement(rq));
  return out;
}

nlohmann::json plan_json(const runtime::PlacementPlan& p) {
  using nlohmann::json;
  json devices = json::object();
  for (runtime::Device d : {runtime::Device::kCuda, runtime::Device::kCpu}) {
    if (d == runtime::Device::kCuda && !p.budget) continue;
    json cats = json::object();
    for (int c = 0; c < runtime::kCategoryCount; ++c) {
      const auto cat = static_cast<runtime::Category>(c);
      if (p.count(d, cat) > 0) cats[std::string(runtime::category_name(cat))] = p.bytes(d, cat);
    }
    devices[std::string(runtime::device_name(d))] = {
        {"weights", p.weights(d)},
        {"kv_cache", p.kv_bytes(d)},
        {"workspace", d == runtime::Device::kCuda ? p.workspace : 0},
        {"total", p.total(d)},
        {"categories", cats}};
  }
  json tensors = json::object();
  for (const auto& t : p.tensors) tensors[t.name] = runtime::device_name(t.device);
  return {{"budget", p.budget ? json(*p.budget) : json(nullptr)},
          {"n_ctx", p.n_ctx},
          {"n_seq", p.n_seq},
          {"kv_bytes_per_token", p.kv_token_bytes()},
          {"whole_model", p.whole_model},
          {"expert_layers_on_gpu", p.expert_layers_on_gpu},
          {"unmatched_rules", p.unmatched_rules},
          {"devices", devices},
          {"tensors", tensors}};
}

int print_plan(const gguf::File& f, const InspectOptions& o) {
  auto plan = make_plan(f, o);
  if (!plan.ok()) {
    fmt::print(stderr, "onecard inspect: {}: {}\n", f.path(), plan.error().message());
    return 1;
  }
  for (const auto& line : runtime::describe_plan(plan->plan)) fmt::print("{}\n", line);
  for (const auto& note : plan->notes) fmt::print("{}\n", note);
  return 0;
}

std::string escape(std::string_view s, size_t max_len) {
  std::string out;
  for (char c : s.substr(0, std::min(s.size(), max_len))) {
    if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else if (c == '"')
      out += "\\\"";
    else
      out += c;
  }
  if (s.size() > max_len) out += fmt::format("...({} bytes)", s.size());
  return out;
}

std::string scalar_string(const gguf::Value& v) {
  switch (v.type()) {
    case gguf::ValueType::BOOL:
      return v.as<bool>().value() ? "true" : "false";
    case gguf::ValueType::F32:
    case gguf::ValueType::F64:
      return fmt::format("{:g}", v.as<double>().value());
    case gguf::ValueType::STRING:
      return fmt::format("\"{}\"", escape(v.as<std::string_view>().value(), 120));
    case gguf::ValueType::I8:
    case gguf::ValueType::I16:
    case gguf::ValueType::I32:
    case gguf::ValueType::I64:
      return fmt::format("{}", v.as<int64_t>().value());
    default:
      return fmt::format("{}", v.as<uint64_t>().value());
  }
}

std::string value_string(const gguf::Value& v, size_t max_array) {
  if (!v.is_array()) return scalar_string(v);
  std::string s = fmt::format("[{} x {}] [", v.array_size(), gguf::value_type_name(v.array_type()));
  const uint64_t shown = std::min<uint64_t>(v.array_size(), max_array);
  for (uint64_t i = 0; i < shown; ++i) {
    if (i) s += ", ";
    if (v.array_type() == gguf::ValueType::STRING) {
      s += fmt::format("\"{}\"", escape(v.strings()[i], 40));
    } else if (v.array_type() == gguf::ValueType::ARRAY) {
      s += value_string(v.items()[i], max_array);
    } else if (v.array_type() == gguf::ValueType::F32 || v.array_type() == gguf::ValueType::F64) {
      s += fmt::format("{:g}", v.element<double>(i).value());
    } else if (v.array_type() == gguf::ValueType::BOOL) {
      s += v.element<bool>(i).value() ? "true" : "false";
    } else {
      s += fmt::format("{}", v.element<int64_t>(i).ok() ? v.element<int64_t>(i).value() : 0);
    }
  }
  if (v.array_size() > shown) s += ", ...";
  return s + "]";
}

void print_deepseek(const gguf::File& f) {
  auto hp_r = model::read_hparams(f);
  if (!hp_r.ok()) {
    fmt::print("\nDeepSeek hyper-parameters: not usable: {}\n", hp_r.error().message());
    return;
  }
  const model::HParams& hp = hp_r.value();
  fmt::print("\nDeepSeek hyper-parameters\n");
  fmt::print("  layers                 {} ({} dense, {} MoE{})\n", hp.n_layer,
             std::min(hp.n_dense_lead, hp.n_layer_decode()),
             hp.n_layer_decode() - std::min(hp.n_dense_lead, hp.n_layer_decode()),
             hp.n_nextn ? fmt::format(", +{} MTP skipped", hp.n_nextn) : "");
  fmt::print("  hidden size            {}\n", hp.n_embd);
  fmt::print("  vocabulary             {}\n", hp.n_vocab);
  fmt::print("  training context       {}\n", hp.n_ctx_train);
  fmt::print("  attention              MLA, {} heads, q_lora {}, kv_lora {}, qk_nope {}, qk_rope {}, v {}\n",
             hp.n_head, hp.q_lora_rank ? fmt::format("{}", hp.q_lora_rank) : "none (direct q)",
             hp.kv_lora_rank, hp.qk_nope, hp.qk_rope, hp.v_head);
  fmt::print("  MLA layout             {}\n", model::layout_name(hp.layout));
  fmt::print("  rope                   base {:g}, {}\n", hp.rope_freq_base,
             hp.yarn.enabled ? fmt::format("YaRN factor {:g}, original context {}, mscale {:.6g}",
                                           hp.yarn.factor, hp.yarn.original_context, hp.yarn_mscale())
                             : "no scaling");
  fmt::print("  attention scale        {:.6g}\n", hp.attention_scale());
  fmt::print("  rms norm epsilon       {:g}\n", hp.rms_eps);
  fmt::print("  dense FFN width        {}\n", hp.n_ff);
  if (hp.n_expert > 0) {
    fmt::print("  experts                {} routed of width {}, {} active, {} shared\n", hp.n_expert,
               hp.n_ff_exp, hp.n_expert_used, hp.n_expert_shared);
    fmt::print(
        "  routing                {}, {}, weights {}normalised, scale {:g}\n", model::gating_name(hp.gating),
        hp.n_group > 1 ? fmt::format("{} groups, {} used", hp.n_group, hp.n_group_used) : "no group limit",
        hp.expert_weights_norm ? "" : "not ", hp.expert_weights_scale);
  }
  const model::ParamCount pc = model::count_params(hp);
  fmt::print("  parameters             {} total, {} in routed experts, {} active per token\n",
             human_count(pc.total), human_count(pc.routed_experts), human_count(pc.active_per_token));
  fmt::print("  KV cache per token     {} ({} values x {} layers) in bf16, {} in f32\n",
             human_bytes(hp.kv_cache_bytes_per_token(2)), hp.kv_cache_width(), hp.n_layer_decode(),
             human_bytes(hp.kv_cache_bytes_per_token(4)));
}

nlohmann::json value_json(const gguf::Value& v, size_t max_array) {
  using nlohmann::json;
  if (!v.is_array()) {
    switch (v.type()) {
      case gguf::ValueType::BOOL:
        return v.as<bool>().value();
      case gguf::ValueType::F32:
      case gguf::ValueType::F64:
        return v.as<double>().value();
      case gguf::ValueType::STRING:
        return std::string(v.as<std::string_view>().value());
      case gguf::ValueType::I8:
      case gguf::ValueType::I16:
      case gguf::ValueType::I32:
      case gguf::ValueType::I64:
        return v.as<int64_t>().value();
      default:
        return v.as<uint64_t>().value();
    }
  }
  json items = json::array();
  const uint64_t shown = std::min<uint64_t>(v.array_size(), max_array);
  for (uint64_t i = 0; i < shown; ++i) {
    switch (v.array_type()) {
      case gguf::ValueType::STRING:
        items.push_back(std::string(v.strings()[i]));
        break;
      case gguf::ValueType::ARRAY:
        items.push_back(value_json(v.items()[i], max_array));
        break;
      case gguf::ValueType::BOOL:
        items.push_back(v.element<bool>(i).value());
        break;
      case gguf::ValueType::F32:
      case gguf::ValueType::F64:
        items.push_back(v.element<double>(i).value());
        break;
      case gguf::ValueType::U64:
        items.push_back(v.element<uint64_t>(i).value());
        break;
      default:
        items.push_back(v.element<int64_t>(i).value());
        break;
    }
  }
  return json{{"type", v.type_description()}, {"count", v.array_size()}, {"head", items}};
}

nlohmann::json hparams_json(const model::HParams& hp) {
  const model::ParamCount pc = model::count_params(hp);
  return {
      {"name", hp.name},
      {"n_vocab", hp.n_vocab},
      {"n_ctx_train", hp.n_ctx_train},
      {"n_layer", hp.n_layer},
      {"n_nextn", hp.n_nextn},
      {"n_embd", hp.n_embd},
      {"n_ff", hp.n_ff},
      {"n_head", hp.n_head},
      {"n_head_kv", hp.n_head_kv},
      {"q_lora_rank", hp.q_lora_rank},
      {"kv_lora_rank", hp.kv_lora_rank},
      {"qk_nope", hp.qk_nope},
      {"qk_rope", hp.qk_rope},
      {"v_head", hp.v_head},
      {"mla_layout", hp.layout == model::MlaLayout::kSplit ? "split" : "combined"},
      {"rope_freq_base", hp.rope_freq_base},
      {"rms_eps", hp.rms_eps},
      {"yarn",
       {{"enabled", hp.yarn.enabled},
        {"factor", hp.yarn.factor},
        {"original_context", hp.yarn.original_context},
        {"log_multiplier", hp.yarn.log_multiplier},
        {"mscale", hp.yarn_mscale()}}},
      {"attention_scale", hp.attention_scale()},
      {"n_dense_lead", hp.n_dense_lead},
      {"n_expert", hp.n_expert},
      {"n_expert_used", hp.n_expert_used},
      {"n_expert_shared", hp.n_expert_shared},
      {"n_ff_exp", hp.n_ff_exp},
      {"expert_weights_scale", hp.expert_weights_scale},
      {"expert_weights_norm", hp.expert_weights_norm},
      {"gating", model::gating_name(hp.gating)},
      {"n_group", hp.n_group},
      {"n_group_used", hp.n_group_used},
      {"params_total", pc.total},
      {"params_routed_experts", pc.routed_experts},
      {"params_active_per_token", pc.active_per_token},
      {"kv_cache_bytes_per_token_bf16", hp.kv_cache_bytes_per_token(2)},
      {"kv_cache_bytes_per_token_f32", hp.kv_cache_bytes_per_token(4)},
  };
}

int print_json(const gguf::File& f, const InspectOptions& o) {
  using nlohmann::json;
  json out = {{"file", f.path()},           {"version", f.version()},         {"size", f.file_size()},
              {"alignment", f.alignment()}, {"data_offset", f.data_offset()}, {"has_data", f.has_data()}};
  json meta = json::object();
  for (const auto& kv : f.metadata()) meta[std::string(kv.key)] = value_json(kv.value, o.max_array);
  out["metadata"] = meta;
  json tensors = json::array();
  for (const auto& t : f.tensors()) {
    tensors.push_back({{"name", t.name},
                       {"type", gguf::type_name(t.type)},
                       {"shape", std::vector<uint64_t>(t.dims().begin(), t.dims().end())},
                       {"bytes", t.n_bytes},
                       {"offset", t.offset}});
  }
  out["tensors"] = tensors;
  auto arch = f.get<std::string_view>("general.architecture");
  if (arch.ok() && arch.value() == "deepseek2") {
    auto hp = model::read_hparams(f);
    if (hp.ok())
      out["deepseek"] = hparams_json(hp.value());
    else
      out["deepseek_error"] = hp.error().message();
  }
  int rc = 0;
  if (o.plan) {
    auto plan = make_plan(f, o);
    if (plan.ok()) {
      out["plan"] = plan_json(plan->plan);
      out["plan_notes"] = plan->notes;
    } else {
      out["plan_error"] = plan.error().message();
      rc = 1;
    }
  }
  fmt::print("{}\n", out.dump(1));
  return rc;
}

void print_system() {
  const CpuFeatures& cpu = cpu_features();
  const SystemInfo sys = system_info();
  fmt::print("System\n");
  fmt::print("  CPU                    {} ({}), {} logical CPUs\n",
             cpu.model_name.empty() ? "unknown" : cpu.model_name, cpu.vendor, sys.logical_cpus);
  fmt::print("  CPU features           {}\n", cpu.summary());
  fmt::print("  CPU kernels            {}\n", cpu::kernel_path());
  fmt::print("  memory                 {} total, {} available\n", human_bytes(sys.memory_total),
             human_bytes(sys.memory_available));
  const CpuTopology& topology = cpu_topology();
  fmt::print("  usable by this process {} physical cores, {} logical CPUs ({})\n", topology.physical(),
             topology.logical(), format_cpu_list(topology.cpus));
  const std::string thp = thp_setting();
  fmt::print("  transparent huge pages {}\n", thp.empty() ? "not available" : thp);
  const auto& nodes = numa_nodes();
  fmt::print("  NUMA                   {} node{}, libnuma {}\n", nodes.size(), nodes.size() == 1 ? "" : "s",
             libnuma_state());
  for (const NumaNode& n : nodes) {
    fmt::print("  NUMA node {:<12} CPUs {}, {} total, {} free\n", n.id,
               n.cpus.empty() ? "none" : format_cpu_list(n.cpus), human_bytes(n.memory_total),
               human_bytes(n.memory_free));
  }
#ifdef ONECARD_HAVE_CUDA
  std::string why;
  const auto devices = cuda::list_devices(&why);
  if (devices.empty()) fmt::print("  CUDA                   built in; no device usable: {}\n", why);
  for (const auto& d : devices) {
    fmt::print("  CUDA device {}          {} (sm_{}{}, {} SMs), {} total, {} free\n", d.index, d.name,
               d.compute_major, d.compute_minor, d.multiprocessors, human_bytes(d.memory_total),
               human_bytes(d.memory_free));
  }
#else
  fmt::print("  CUDA                   not built (nvcc was not found at configure time)\n");
#endif
}

int run_inspect(const InspectOptions& o) {
  if (o.system) {
    print_system();
    if (o.path.empty()) return 0;
    fmt::print("\n");
  }
  if (o.path.empty()) {
    fmt::print(stderr, "onecard inspect: give a GGUF file, or --system\n");
    return 2;
  }
  // Inspection reads no tensor data, so a header-only (or truncated) file is shown too.
  auto r = gguf::File::open_header(o.path);
  if (!r.ok()) {
    fmt::print(stderr, "onecard inspect: {}\n", r.error().message());
    return 1;
  }
  const gguf::File& f = r.value();
  // A file that lacks data without saying so is damaged: say what the loaders will say of it.
  if (!f.has_data() && !f.has(gguf::kHeaderOnlyKey)) {
    if (auto full = gguf::File::open(o.path); !full.ok())
      fmt::print(stderr, "onecard inspect: warning: {}; shown from its header alone\n",
                 full.error().message());
  }
  if (o.json) return print_json(f, o);
  fmt::print("{}: GGUF v{}, {}, {} metadata entries, {} tensors, alignment {}{}\n", f.path(), f.version(),
             human_bytes(f.file_size()), f.metadata().size(), f.tensors().size(), f.alignment(),
             data_note(f));
  if (o.plan) return print_plan(f, o);
  fmt::print("\nMetadata\n");
  for (const auto& kv : f.metadata()) {
    fmt::print("  {:<48} {}\n", kv.key, value_string(kv.value, o.max_array));
  }
  if (!f.tensors().empty()) {
    fmt::print("\nTensors\n  {:<40} {:<8} {:<24} {:>12}\n", "name", "type", "shape", "size");
    struct Totals {
      uint64_t count = 0, elements = 0, bytes = 0;
    };
    std::map<std::string_view, Totals> per_type;
    uint64_t elements = 0, bytes = 0;
    size_t shown = 0;
    for (const auto& t : f.tensors()) {
      auto& tot = per_type[gguf::type_name(t.type)];
      ++tot.count;
      tot.elements += t.n_elements;
      tot.bytes += t.n_bytes;
      elements += t.n_elements;
      bytes += t.n_bytes;
      if (o.all_tensors || shown < 40) {
        fmt::print("  {:<40} {:<8} {:<24} {:>12}\n", t.name, gguf::type_name(t.type), t.shape_string(),
                   human_bytes(t.n_bytes));
        ++shown;
      }
    }
    if (shown < f.tensors().size()) {
      fmt::print("  ... {} more (--all-tensors lists them)\n", f.tensors().size() - shown);
    }
    fmt::print("\nTotals per type\n");
    for (const auto& [name, tot] : per_type) {
      fmt::print("  {:<8} {:>5} tensors {:>14} parameters {:>12} ({:.2f} bits per weight)\n", name, tot.count,
                 human_count(tot.elements), human_bytes(tot.bytes),
                 8.0 * static_cast<double>(tot.bytes) / static_cast<double>(tot.elements));
    }
    fmt::print("  {:<8} {:>5} tensors {:>14} parameters {:>12} ({:.2f} bits per weight)\n", "all",
               f.tensors().size(), human_count(elements), human_bytes(bytes),
               8.0 * static_cast<double>(bytes) / static_cast<double>(elements));
  }
  auto arch = f.get<std::string_view>("general.architecture");
  if (arch.ok() && arch.value() == "deepseek2") print_deepseek(f);
  return 0;
}

}  // namespace

Runner add_inspect(CLI::App& app) {
  auto o = std::make_shared<InspectOptions>();
  auto* cmd =
      app.add_subcommand("inspect", "Show a GGUF file's metadata, tensors and DeepSeek hyper-parameters");
  cmd->add_option("file", o->path, "GGUF file");
  cmd->add_flag("--system", o->system,
                "Show the CPU (features the kernels can use, physical cores), memory, NUMA nodes, huge "
                "pages and CUDA devices");
  cmd->add_flag("--all-tensors", o->all_tensors, "List every tensor (default: the first 40)");
  cmd->add_flag("--json", o->json,
                "Print the file's description as JSON (every tensor; arrays cut to --max-array)");
  cmd->add_option("--max-array", o->max_array, "Array elements shown per metadata value")
      ->capture_default_str();
  cmd->add_flag("--plan", o->plan,
                "Print the GPU/CPU placement plan (GiB per device and category, KV cache, what fits) "
                "instead of the metadata; needs no GPU: --gpu-memory plans for one, and a header-only file "
                "(onecard gen --preset r1 --header-only) stands in for a model not downloaded");
  o->placement.add_to(cmd, "Used by --plan");
  cmd->add_option("-c,--ctx-size", o->ctx, "With --plan: context length in tokens per sequence")
      ->capture_default_str();
  cmd->add_option("--parallel", o->parallel, "With --plan: sequences with a full context each")
      ->capture_default_str();
  cmd->add_option("-b,--batch-size", o->batch, "With --plan: tokens per forward step (the workspace)")
      ->capture_default_str();
  cmd->add_option("--kv-type", o->kv_type, "With --plan: KV cache type, bf16 or f32")->capture_default_str();
  return [o] { return run_inspect(*o); };
}

}  // namespace onecard::app
