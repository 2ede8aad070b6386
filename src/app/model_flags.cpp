#include "app/model_flags.h"

#include <stdexcept>

#include <fmt/format.h>

#include "base/log.h"
#include "base/placement.h"

namespace onecard::app {

void ModelFlags::add_to(CLI::App* cmd) {
  cmd->add_option("-m,--model", path, "GGUF model (architecture deepseek2)")->required();
  cmd->add_option("-c,--ctx-size", ctx, "Context length in tokens (capped at the model's)")
      ->capture_default_str();
  cmd->add_option("-b,--batch-size", batch, "Tokens evaluated per forward step in prefill")
      ->capture_default_str();
  cmd->add_option("-t,--threads", threads, "CPU threads (0: one per physical core the process may use)")
      ->capture_default_str();
  cmd->add_option("--kv-type", kv_type, "KV cache type: bf16 or f32")->capture_default_str();
  cmd->add_flag("--no-repack", no_repack, kNoRepackHelp);
  cmd->add_flag("--no-hugepages", no_hugepages,
                "Do not ask for transparent huge pages (madvise MADV_HUGEPAGE) on the model's mapping");
  cmd->add_flag(
      "--prefault", prefault,
      "Read every page of the model at load, on all threads, with a progress line (servers: no page "
      "faults during the first requests)");
  cmd->add_option("--numa", numa,
                  "With several NUMA nodes (threads are then pinned per node): interleave (spread the routed "
                  "experts' pages over the nodes' memory; needs libnuma) or none (pages stay where first "
                  "touched). No effect on one node")
      ->check(CLI::IsMember({"interleave", "none"}))
      ->capture_default_str();
  placement.add_to(cmd, kModelPlacementNote);
}

Result<LoadedModel> load_model(const ModelFlags& flags) {
  ONECARD_ASSIGN_OR_RETURN(const model::KvType kv, model::kv_type_from_name(flags.kv_type));
  model::LoadOptions o;
  ONECARD_ASSIGN_OR_RETURN(o.device_of,
                           gpu_placement(flags.placement, flags.path, static_cast<uint32_t>(flags.ctx),
                                         static_cast<uint32_t>(flags.batch), kv));
  o.n_ctx = flags.ctx;
  o.n_batch = flags.batch;
  o.n_threads = flags.threads;
  o.repack_experts = !flags.no_repack;
  o.placement.hugepages = !flags.no_hugepages;
  o.placement.prefault = flags.prefault;
  ONECARD_ASSIGN_OR_RETURN(o.placement.numa, numa_mode_from_name(flags.numa));
  LoadedModel m;
  m.kv_type = kv;
  ONECARD_ASSIGN_OR_RETURN(m.model, model::DeepSeek2::load(flags.path, o));
  // After load, so that what the repacking and the pre-fault mapped is counted. The kernel walks the
  // page tables to answer (about 15 ms per GB mapped in 4 KiB pages): skipped for big models unless the
  // pre-fault, minutes long, made the figure worth its seconds.
  const bool residency_is_cheap = m.model->file().file_size() <= (uint64_t{16} << 30);
  if ((o.placement.hugepages && residency_is_cheap) || o.placement.prefault) {
    log::info("{}", residency_summary(m.model->file().bytes()));
  }
  ONECARD_ASSIGN_OR_RETURN(m.tokenizer, text::Tokenizer::from_gguf(m.model->file()));
  return m;
}

std::unique_ptr<runtime::Engine> make_engine(const LoadedModel& m, int parallel) {
  runtime::EngineOptions o;
  o.parallel = parallel;
  o.kv_type = m.kv_type;
  return std::make_unique<runtime::Engine>(*m.model, *m.tokenizer, o);
}

void GenerationFlags::add_to(CLI::App* cmd) {
  sample::SamplingParams& p = options.sampling;
  cmd->add_option("-n,--max-tokens", options.max_tokens, "Tokens to generate at most (-1: until the end)")
      ->capture_default_str();
  cmd->add_option("--temp", p.temperature, "Temperature (0: greedy)")->capture_default_str();
  cmd->add_option("--top-k", p.top_k, "Keep the k most likely tokens (0: off)")->capture_default_str();
  cmd->add_option("--top-p", p.top_p, "Keep the most likely tokens up to this probability mass (1: off)")
      ->capture_default_str();
  cmd->add_option("--min-p", p.min_p,
                  "Drop tokens below this fraction of the best one's probability (0: off)")
      ->capture_default_str();
  cmd->add_option("--repeat-penalty", p.repeat_penalty, "Penalty for recent tokens (1: off)")
      ->capture_default_str();
  cmd->add_option("--presence-penalty", p.presence_penalty, "Subtracted from recent tokens' logits")
      ->capture_default_str();
  cmd->add_option("--frequency-penalty", p.frequency_penalty, "Subtracted per occurrence among recent tokens")
      ->capture_default_str();
  cmd->add_option("--repeat-last-n", p.penalty_last_n, "Recent tokens the penalties look at")
      ->capture_default_str();
  cmd->add_option("-s,--seed", p.seed, "Random seed: the same seed and settings give the same output")
      ->capture_default_str();
  cmd->add_option("--logit-bias", "ID=BIAS: add BIAS to token ID's logit; -inf bans it (repeatable)")
      ->each([&p](const std::string& arg) {
        const auto eq = arg.find('=');
        try {
          if (eq == std::string::npos) throw std::invalid_argument(arg);
          size_t used_id = 0, used_bias = 0;
          const int id = std::stoi(arg.substr(0, eq), &used_id);
          const float bias = std::stof(arg.substr(eq + 1), &used_bias);
          if (used_id != eq || used_bias != arg.size() - eq - 1) throw std::invalid_argument(arg);
          p.logit_bias.emplace_back(id, bias);
        } catch (const std::exception&) {
          throw CLI::ValidationError("--logit-bias",
                                     "'" + arg + "' is not ID=BIAS (e.g. 1234=-2.5 or 1234=-inf)");
        }
      });
  cmd->add_option("--stop", options.stop, "Stop when this text is generated (repeatable)");
  cmd->add_flag("--ignore-eos", options.ignore_eos, "Keep generating past end-of-generation tokens");
}

std::string timing_summary(const runtime::GenerationStats& s) {
  auto rate = [](int n, double secs) { return secs > 0 ? n / secs : 0.0; };
  return fmt::format(
      "prompt {} tokens in {:.2f} s ({:.1f} tok/s), generation {} tokens in {:.2f} s ({:.1f} tok/s), "
      "finish: {}",
      s.prompt_tokens, s.prompt_seconds, rate(s.prompt_tokens, s.prompt_seconds), s.generated_tokens,
      s.generate_seconds, rate(s.generated_tokens, s.generate_seconds),
      runtime::finish_reason_name(s.finish));
}

}  // namespace onecard::app
