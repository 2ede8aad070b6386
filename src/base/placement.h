// Where a model's threads and weights go at load: how many threads and on which NUMA nodes, huge pages for
// the weights' mapping, pre-faulting it, and the routed experts' pages spread over the nodes. Every step
// that the system refuses is reported and skipped, never fatal; on a one-node machine the NUMA steps do
// nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/cpu_topology.h"
#include "base/numa.h"
#include "base/result.h"
#include "base/thread_pool.h"

namespace onecard {

struct PlacementOptions {
  bool hugepages = true;                  // madvise(MADV_HUGEPAGE) on the mapping
  bool prefault = false;                  // touch every page at load, on the pool's threads
  NumaMode numa = NumaMode::kInterleave;  // with several nodes: spread the routed experts' pages
};

struct ThreadChoice {
  int threads = 1;
  std::string summary;  // "threads: 8 (physical cores; 16 logical)"
};

// `requested` threads when positive, else one per physical core among the CPUs the process may use.
ThreadChoice choose_threads(int requested, const CpuTopology& topology);

// A pool of choose_threads(requested) threads; with several NUMA nodes its workers are pinned per node and,
// when interleaving, allocate with an interleave policy (so the page cache they fault in spreads too).
// Logs the thread choice and the NUMA plan.
std::unique_ptr<ThreadPool> make_thread_pool(int requested, const PlacementOptions& options);

struct PlacementReport {
  std::vector<std::string> lines;     // what was done, for the load log
  std::vector<std::string> warnings;  // what the system refused
};

// Applies `options` to a model's mapped file, named `name` in messages: huge pages on `mapping`; with
// several nodes (nodes read from the pool's threads) and kInterleave, an interleave policy on the `experts`
// ranges, after the pre-fault when there is one, migrating pages the page cache holds elsewhere; the
// pre-fault with a progress line on stderr. The report is logged as well as returned. The only error is a
// pre-fault stopped by SIGINT or SIGTERM (pending while blocked, as `serve` blocks them during load).
Result<PlacementReport> place_weights(std::span<const uint8_t> mapping,
                                      std::span<const std::span<const uint8_t>> experts, ThreadPool& pool,
                                      const PlacementOptions& options, std::string_view name);

// "weights mapping: 12.0 GiB resident, 10.0 GiB in 2 MiB pages" from /proc/self/smaps.
std::string residency_summary(std::span<const uint8_t> mapping);

}  // namespace onecard
