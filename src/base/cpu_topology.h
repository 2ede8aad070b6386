// Which logical CPUs share a physical core, read from sysfs, so that compute threads default to one per core:
// SMT siblings share a core's execution units and caches, and decode is bound by memory bandwidth, so a
// second thread per core adds contention, not speed.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace onecard {

struct CpuTopology {
  std::vector<int> cpus;                // usable logical CPUs (online and in the affinity mask), ascending
  std::vector<std::vector<int>> cores;  // the usable CPUs grouped by physical core, ordered by first CPU

  int logical() const { return static_cast<int>(cpus.size()); }
  int physical() const { return static_cast<int>(cores.size()); }
};

// A CPU or node list as sysfs writes it: "0-3,8,10-11" (empty text: no CPUs). Sorted, without duplicates.
Result<std::vector<int>> parse_cpu_list(std::string_view text);
// The inverse for a sorted list: {0, 1, 2, 3, 8} gives "0-3,8".
std::string format_cpu_list(std::span<const int> cpus);

// Reads `root` (/sys/devices/system/cpu): `online`, and per CPU in `allowed` topology/thread_siblings_list,
// or where that is missing topology/physical_package_id and core_id. A CPU without topology files is a core
// of its own; a missing `online` file counts every allowed CPU online.
CpuTopology read_cpu_topology(const std::string& root, std::span<const int> allowed);

// The CPUs this process may run on (sched_getaffinity); empty if the call fails.
std::vector<int> affinity_cpus();

// This process's topology, read once. Without sysfs or an affinity mask it is hardware_concurrency() CPUs,
// each its own core.
const CpuTopology& cpu_topology();

}  // namespace onecard
