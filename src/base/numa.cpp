#include "base/numa.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#ifdef ONECARD_HAVE_LIBNUMA
#include <numa.h>
#include <numaif.h>
#endif

namespace onecard {
namespace {

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// "Node 0 MemTotal:       15296716 kB"
uint64_t meminfo_bytes(const std::string& text, std::string_view field) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const size_t at = line.find(field);
    if (at == std::string::npos) continue;
    return std::strtoull(line.c_str() + at + field.size(), nullptr, 10) * 1024;
  }
  return 0;
}

#ifdef ONECARD_HAVE_LIBNUMA
// A node mask for mbind/set_mempolicy, and the bit count to pass (one more than the bits, as the kernel
// subtracts one).
struct NodeMask {
  std::vector<unsigned long> words;
  unsigned long max_node = 0;
};

NodeMask node_mask(std::span<const int> nodes) {
  constexpr int kBits = 8 * sizeof(unsigned long);
  NodeMask m;
  const int top = nodes.empty() ? 0 : *std::max_element(nodes.begin(), nodes.end());
  m.words.assign(static_cast<size_t>(top / kBits + 1), 0);
  for (int n : nodes) m.words[static_cast<size_t>(n / kBits)] |= 1ul << (n % kBits);
  m.max_node = static_cast<unsigned long>(m.words.size() * kBits + 1);
  return m;
}
#endif

}  // namespace

std::vector<NumaNode> read_numa_nodes(const std::string& root) {
  std::vector<NumaNode> nodes;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() < 5 || name.compare(0, 4, "node") != 0 ||
        !std::all_of(name.begin() + 4, name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    NumaNode node;
    node.id = std::stoi(name.substr(4));
    auto cpus = parse_cpu_list(read_text(entry.path() / "cpulist"));
    if (cpus.ok()) node.cpus = std::move(cpus).value();
    const std::string meminfo = read_text(entry.path() / "meminfo");
    node.memory_total = meminfo_bytes(meminfo, "MemTotal:");
    node.memory_free = meminfo_bytes(meminfo, "MemFree:");
    nodes.push_back(std::move(node));
  }
  std::sort(nodes.begin(), nodes.end(), [](const NumaNode& a, const NumaNode& b) { return a.id < b.id; });
  return nodes;
}

const std::vector<NumaNode>& numa_nodes() {
  static const std::vector<NumaNode> nodes = read_numa_nodes("/sys/devices/system/node");
  return nodes;
}

Result<NumaMode> numa_mode_from_name(std::string_view name) {
  if (name == "interleave") return NumaMode::kInterleave;
  if (name == "none") return NumaMode::kNone;
  return make_error("--numa '{}': expected interleave or none", name);
}

std::string_view numa_mode_name(NumaMode mode) {
  return mode == NumaMode::kInterleave ? "interleave" : "none";
}

bool have_libnuma() {
#ifdef ONECARD_HAVE_LIBNUMA
  static const bool available = numa_available() != -1;
  return available;
#else
  return false;
#endif
}

std::string_view libnuma_state() {
#ifdef ONECARD_HAVE_LIBNUMA
  return have_libnuma() ? "available" : "built in, but the kernel refuses it (numa_available() failed)";
#else
  return "not built in (libnuma-dev was missing when cmake ran)";
#endif
}

NumaPlan plan_numa(NumaMode mode, std::span<const NumaNode> nodes, const CpuTopology& topology, int n_threads,
                   bool libnuma) {
  NumaPlan plan;
  plan.thread_node.assign(static_cast<size_t>(std::max(1, n_threads)), -1);
  std::vector<int> cores;  // per plan node: physical cores, counted by each core's first usable CPU
  for (const NumaNode& node : nodes) {
    NumaNode usable{node.id, {}, node.memory_total, node.memory_free};
    for (int cpu : node.cpus) {
      if (std::binary_search(topology.cpus.begin(), topology.cpus.end(), cpu)) usable.cpus.push_back(cpu);
    }
    if (usable.cpus.empty()) continue;
    int n_cores = 0;
    for (const auto& core : topology.cores) {
      if (std::binary_search(usable.cpus.begin(), usable.cpus.end(), core.front())) ++n_cores;
    }
    cores.push_back(std::max(1, n_cores));
    plan.nodes.push_back(std::move(usable));
  }
  if (plan.nodes.size() < 2) {
    plan.nodes.clear();
    plan.summary = nodes.empty() ? "NUMA: no nodes in sysfs; nothing to place"
                                 : "NUMA: one node with usable CPUs; nothing to place";
    return plan;
  }
  // Each thread goes to the node with the lowest load per core after taking it (the earlier node on ties).
  std::vector<int> assigned(plan.nodes.size(), 0);
  for (size_t t = 0; t < plan.thread_node.size(); ++t) {
    size_t best = 0;
    for (size_t i = 1; t > 0 && i < plan.nodes.size(); ++i) {
      if (int64_t{assigned[i] + 1} * cores[best] < int64_t{assigned[best] + 1} * cores[i]) best = i;
    }
    ++assigned[best];
    if (t > 0) plan.thread_node[t] = plan.nodes[best].id;
  }
  plan.interleave = mode == NumaMode::kInterleave && libnuma;
  if (mode == NumaMode::kInterleave && !libnuma) {
#ifdef ONECARD_HAVE_LIBNUMA
    const char* why = "the kernel refuses libnuma's calls";
#else
    const char* why = "this build has no libnuma";
#endif
    plan.warning = fmt::format("--numa interleave: {}; pages stay where first touched", why);
  }
  std::string per_node;
  for (size_t i = 0; i < plan.nodes.size(); ++i) {
    per_node += fmt::format("{}node {}: {} threads on {} cores", i ? ", " : "", plan.nodes[i].id, assigned[i],
                            cores[i]);
  }
  plan.summary =
      fmt::format("NUMA: {} nodes ({}), worker threads pinned per node; routed experts {}", plan.nodes.size(),
                  per_node, plan.interleave ? "interleaved over the nodes" : "where first touched");
  return plan;
}

Status pin_current_thread(std::span<const int> cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus) {
    if (c >= 0 && c < CPU_SETSIZE) CPU_SET(c, &set);
  }
  if (sched_setaffinity(0, sizeof(set), &set) != 0) {
    return make_error("sched_setaffinity to {} CPUs: {}", cpus.size(), std::strerror(errno));
  }
  return {};
}

#ifdef ONECARD_HAVE_LIBNUMA
Status set_thread_interleave(std::span<const int> nodes) {
  const NodeMask m = node_mask(nodes);
  const long r = nodes.empty() ? set_mempolicy(MPOL_DEFAULT, nullptr, 0)
                               : set_mempolicy(MPOL_INTERLEAVE, m.words.data(), m.max_node);
  if (r != 0)
    return make_error("set_mempolicy({}): {}", nodes.empty() ? "default" : "interleave",
                      std::strerror(errno));
  return {};
}

Status interleave_range(const void* begin, size_t size, std::span<const int> nodes, bool move) {
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t start = (reinterpret_cast<uintptr_t>(begin) + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(begin) + size) / page * page;
  if (end <= start) return {};
  const NodeMask m = node_mask(nodes);
  if (mbind(reinterpret_cast<void*>(start), end - start, MPOL_INTERLEAVE, m.words.data(), m.max_node,
            move ? MPOL_MF_MOVE : 0) != 0) {
    return make_error("mbind(MPOL_INTERLEAVE) on {} bytes: {}", end - start, std::strerror(errno));
  }
  return {};
}
#else
Status set_thread_interleave(std::span<const int>) {
  return make_error("set_mempolicy: built without libnuma");
}

Status interleave_range(const void*, size_t, std::span<const int>, bool) {
  return make_error("mbind: built without libnuma");
}
#endif

}  // namespace onecard
