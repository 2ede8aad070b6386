#include "base/placement.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>

#include <fmt/format.h>

#include "base/format.h"
#include "base/hugepages.h"
#include "base/log.h"
#include "base/prefault.h"
#include "base/progress.h"

namespace onecard {
namespace {

// `serve` blocks SIGINT and SIGTERM while it loads and waits for them afterwards: a pending one asks the
// load to stop. Elsewhere they are not blocked and end the process as they arrive.
const char* pending_stop_signal() {
  sigset_t pending;
  sigemptyset(&pending);
  if (sigpending(&pending) != 0) return nullptr;
  if (sigismember(&pending, SIGINT) == 1) return "SIGINT";
  if (sigismember(&pending, SIGTERM) == 1) return "SIGTERM";
  return nullptr;
}

std::vector<int> pool_nodes(const ThreadPool& pool) {
  std::vector<int> nodes;
  for (int t = 0; t < pool.size(); ++t) {
    if (pool.node(t) >= 0) nodes.push_back(pool.node(t));
  }
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  return nodes;
}

// The experts' ranges sorted and joined where only alignment padding separates them.
std::vector<std::span<const uint8_t>> joined(std::span<const std::span<const uint8_t>> ranges) {
  std::vector<std::span<const uint8_t>> sorted(ranges.begin(), ranges.end());
  std::sort(sorted.begin(), sorted.end(), [](auto a, auto b) { return a.data() < b.data(); });
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  std::vector<std::span<const uint8_t>> out;
  for (auto r : sorted) {
    if (r.empty()) continue;
    if (!out.empty() && r.data() >= out.back().data() &&
        reinterpret_cast<uintptr_t>(r.data()) <=
            reinterpret_cast<uintptr_t>(out.back().data()) + out.back().size() + page) {
      const uint8_t* end = std::max(out.back().data() + out.back().size(), r.data() + r.size());
      out.back() = {out.back().data(), static_cast<size_t>(end - out.back().data())};
    } else {
      out.push_back(r);
    }
  }
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

ThreadChoice choose_threads(int requested, const CpuTopology& topology) {
  ThreadChoice c;
  if (requested > 0) {
    c.threads = requested;
    c.summary = fmt::format("threads: {} (-t; {} physical cores, {} logical CPUs usable)", requested,
                            topology.physical(), topology.logical());
  } else {
    c.threads = std::max(1, topology.physical());
    c.summary = fmt::format("threads: {} (physical cores; {} logical)", c.threads, topology.logical());
  }
  return c;
}

std::unique_ptr<ThreadPool> make_thread_pool(int requested, const PlacementOptions& options) {
  const CpuTopology& topology = cpu_topology();
  const ThreadChoice choice = choose_threads(requested, topology);
  log::info("{}", choice.summary);
  NumaPlan plan = plan_numa(options.numa, numa_nodes(), topology, choice.threads, have_libnuma());
  if (!plan.warning.empty()) log::warn("{}", plan.warning);
  if (plan.nodes.empty()) return std::make_unique<ThreadPool>(choice.threads);
  log::info("{}", plan.summary);
  ThreadPlacement placement;
  placement.nodes = plan.thread_node;
  placement.on_start = [plan = std::move(plan)](int thread) {
    static std::atomic<bool> warned{false};
    const int node = plan.thread_node[static_cast<size_t>(thread)];
    std::vector<int> ids;
    for (const NumaNode& n : plan.nodes) {
      ids.push_back(n.id);
      if (n.id != node) continue;
      if (auto st = pin_current_thread(n.cpus); !st.ok() && !warned.exchange(true)) {
        log::warn("thread {}: pinning to node {}: {}", thread, node, st.error().message());
      }
    }
    if (!plan.interleave) return;
    if (auto st = set_thread_interleave(ids); !st.ok() && !warned.exchange(true)) {
      log::warn("thread {}: {}", thread, st.error().message());
    }
  };
  return std::make_unique<ThreadPool>(choice.threads, std::move(placement));
}

Result<PlacementReport> place_weights(std::span<const uint8_t> mapping,
                                      std::span<const std::span<const uint8_t>> experts, ThreadPool& pool,
                                      const PlacementOptions& options, std::string_view name) {
  PlacementReport report;
  // Logged as they happen, so that they come before and after the pre-fault's progress line in order.
  auto note = [&](std::string line) {
    log::info("{}", line);
    report.lines.push_back(std::move(line));
  };
  auto warn = [&](std::string line) {
    log::warn("{}", line);
    report.warnings.push_back(std::move(line));
  };
  if (!options.hugepages) {
    note("huge pages: off (--no-hugepages)");
  } else {
    std::string setting = thp_setting();
    if (setting.empty()) setting = "unknown (no /sys/kernel/mm/transparent_hugepage/enabled)";
    if (auto st = advise_hugepages(mapping); !st.ok()) {
      warn(fmt::format("{}: huge pages not available: {}; system setting: {}", name, st.error().message(),
                       setting));
    } else {
      note(fmt::format("huge pages: asked for (madvise MADV_HUGEPAGE); system setting: {}{}", setting,
                       setting == "never" ? " (the kernel will not use them)" : ""));
    }
  }

  const std::vector<int> nodes = pool_nodes(pool);
  const bool interleave = options.numa == NumaMode::kInterleave && nodes.size() >= 2 && have_libnuma();
  auto interleave_experts = [&](bool move) {
    const auto start = std::chrono::steady_clock::now();
    const std::vector<std::span<const uint8_t>> ranges = joined(experts);
    uint64_t bytes = 0;
    std::vector<std::string> errors(ranges.size());
    pool.parallel_for(static_cast<int64_t>(ranges.size()), [&](int64_t i, int) {
      const auto r = ranges[static_cast<size_t>(i)];
      if (auto st = interleave_range(r.data(), r.size(), nodes, move); !st.ok()) {
        errors[static_cast<size_t>(i)] = st.error().message();
      }
    });
    for (size_t i = 0; i < ranges.size(); ++i) {
      if (errors[i].empty()) bytes += ranges[i].size();
    }
    const auto failed = std::find_if(errors.begin(), errors.end(), [](auto& e) { return !e.empty(); });
    if (failed != errors.end()) warn(fmt::format("{}: routed experts: {}", name, *failed));
    note(fmt::format("NUMA: routed experts ({}) interleaved over {} nodes{} in {:.1f}s", human_bytes(bytes),
                     nodes.size(), move ? ", resident pages migrated" : "", seconds_since(start)));
  };
  if (interleave && !options.prefault) interleave_experts(false);

  if (options.prefault) {
    const auto start = std::chrono::steady_clock::now();
    Progress progress("pre-faulting weights", mapping.size());
    uint64_t shown = 0;
    const char* stopped_by = nullptr;
    PrefaultOptions po;
    po.progress = [&](uint64_t done) {
      progress.advance(done - shown);
      shown = done;
      stopped_by = pending_stop_signal();
      return stopped_by == nullptr;
    };
    // Workers carry the interleave policy from their start; the calling thread takes it for the pre-fault.
    if (interleave) {
      po.on_thread = [&](int thread) {
        if (thread == 0) (void)set_thread_interleave(nodes);
      };
    }
    const PrefaultResult r = prefault(mapping, pool, po);
    if (interleave) (void)set_thread_interleave({});
    if (r.stopped) {
      progress.finish();
      return make_error("{}: pre-faulting stopped by {} after {} of {}", name,
                        stopped_by ? stopped_by : "request", human_bytes(r.bytes),
                        human_bytes(mapping.size()));
    }
    progress.advance(r.bytes - shown);
    progress.finish();
    const double secs = seconds_since(start);
    note(fmt::format("pre-faulted {} in {:.1f}s ({}/s) on {} threads", human_bytes(r.bytes), secs,
                     human_bytes(static_cast<uint64_t>(r.bytes / std::max(secs, 1e-3))), pool.size()));
    if (interleave) interleave_experts(true);
  }
  return report;
}

std::string residency_summary(std::span<const uint8_t> mapping) {
  auto r = mapping_residency(mapping);
  if (!r.ok()) return fmt::format("weights mapping: residency unknown: {}", r.error().message());
  return fmt::format("weights mapping: {} resident, {} in 2 MiB pages (FilePmdMapped {}, AnonHugePages {})",
                     human_bytes(r->rss), human_bytes(r->file_pmd_mapped + r->anon_huge),
                     human_bytes(r->file_pmd_mapped), human_bytes(r->anon_huge));
}

}  // namespace onecard
