// NUMA nodes and where the engine's threads and weights go on them. On a machine with several nodes, decode
// reads the routed experts at the bandwidth of the memory they sit in: spread over every node's memory
// (interleaved), all memory controllers serve them; left on the node that first touched them, one node's
// controllers serve the lot. Reading the nodes and the plan need no libnuma; applying memory policies does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/cpu_topology.h"
#include "base/result.h"

namespace onecard {

struct NumaNode {
  int id = 0;
  std::vector<int> cpus;                       // as sysfs lists them; a node may have none (memory only)
  uint64_t memory_total = 0, memory_free = 0;  // bytes
};

// Reads `root` (/sys/devices/system/node): every nodeN folder's cpulist and meminfo, ordered by id. Empty
// when the folder is missing (a kernel without NUMA support); an unreadable node's fields stay zero.
std::vector<NumaNode> read_numa_nodes(const std::string& root);

// This machine's nodes, read once.
const std::vector<NumaNode>& numa_nodes();

enum class NumaMode {
  kInterleave,  // routed experts' pages spread over the nodes' memory
  kNone,        // pages stay where first touched
};

Result<NumaMode> numa_mode_from_name(std::string_view name);  // "interleave", "none"
std::string_view numa_mode_name(NumaMode mode);

// Whether this build has libnuma and the kernel answers its calls (numa_available()).
bool have_libnuma();
// have_libnuma() in words, for `inspect --system`.
std::string_view libnuma_state();

struct NumaPlan {
  std::vector<NumaNode> nodes;   // the nodes with usable CPUs, those CPUs only; empty: nothing to place
  std::vector<int> thread_node;  // per pool thread: its node id; thread 0 is the caller and is not pinned: -1
  bool interleave = false;       // apply the interleave policy (kInterleave, several nodes, libnuma)
  std::string summary;           // one line for the load log
  std::string warning;           // a request that cannot be met, for a warning; empty when none
};

// Where `n_threads` pool threads go: with fewer than two nodes having usable CPUs, nowhere (every thread -1,
// nothing pinned or interleaved). Otherwise threads are spread over the nodes in proportion to their
// physical cores (thread 0 counted on the first node), and interleaving happens when asked for and possible.
NumaPlan plan_numa(NumaMode mode, std::span<const NumaNode> nodes, const CpuTopology& topology, int n_threads,
                   bool libnuma);

// Restricts the calling thread to `cpus` (sched_setaffinity; no libnuma needed).
Status pin_current_thread(std::span<const int> cpus);

// Sets the calling thread's memory policy: interleaved over `nodes`, or back to the default (local) with an
// empty list. Page-cache pages a thread faults in follow its policy. Needs libnuma.
Status set_thread_interleave(std::span<const int> nodes);

// Interleaves the pages of [begin, begin+size) (rounded inward to whole pages) over `nodes` (mbind); with
// `move`, pages already resident elsewhere and mapped only by this process migrate. Needs libnuma.
Status interleave_range(const void* begin, size_t size, std::span<const int> nodes, bool move);

}  // namespace onecard
