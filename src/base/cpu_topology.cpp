#include "base/cpu_topology.h"

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>
#include <thread>
#include <utility>

namespace onecard {
namespace {

bool read_text(const std::string& path, std::string* out) {
  std::ifstream in(path);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  *out = s.str();
  return true;
}

bool parse_int(std::string_view s, int* out) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

Result<std::vector<int>> parse_cpu_list(std::string_view text) {
  std::vector<int> cpus;
  std::string_view rest = text;
  while (!rest.empty() && (rest.back() == '\n' || rest.back() == ' ')) rest.remove_suffix(1);
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    const size_t dash = item.find('-');
    int first = 0, last = 0;
    const bool ok = dash == std::string_view::npos
                        ? parse_int(item, &first) && parse_int(item, &last)
                        : parse_int(item.substr(0, dash), &first) && parse_int(item.substr(dash + 1), &last);
    if (!ok || first < 0 || last < first) return make_error("'{}' is not a CPU list (e.g. 0-3,8)", text);
    for (int c = first; c <= last; ++c) cpus.push_back(c);
  }
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  return cpus;
}

std::string format_cpu_list(std::span<const int> cpus) {
  std::string out;
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(cpus[i]);
    if (j > i) out += '-' + std::to_string(cpus[j]);
    i = j + 1;
  }
  return out;
}

CpuTopology read_cpu_topology(const std::string& root, std::span<const int> allowed) {
  CpuTopology t;
  std::string text;
  std::vector<int> online;
  if (read_text(root + "/online", &text)) {
    auto parsed = parse_cpu_list(text);
    if (parsed.ok()) online = std::move(parsed).value();
  }
  for (int cpu : allowed) {
    if (online.empty() || std::binary_search(online.begin(), online.end(), cpu)) t.cpus.push_back(cpu);
  }
  std::sort(t.cpus.begin(), t.cpus.end());
  t.cpus.erase(std::unique(t.cpus.begin(), t.cpus.end()), t.cpus.end());

  // A core is named by its lowest sibling (thread_siblings_list), else by (package, core_id), else by the
  // CPU.
  std::map<std::pair<int, int>, size_t> core_of;
  for (int cpu : t.cpus) {
    const std::string dir = root + "/cpu" + std::to_string(cpu) + "/topology/";
    std::pair<int, int> key{-1, cpu};
    int package = 0, core = 0;
    if (read_text(dir + "thread_siblings_list", &text)) {
      auto siblings = parse_cpu_list(text);
      if (siblings.ok() && !siblings->empty()) key = {-1, siblings->front()};
    } else if (read_text(dir + "physical_package_id", &text) && parse_int(text, &package) &&
               read_text(dir + "core_id", &text) && parse_int(text, &core)) {
      key = {package, core};
    }
    auto [it, inserted] = core_of.try_emplace(key, t.cores.size());
    if (inserted) t.cores.emplace_back();
    t.cores[it->second].push_back(cpu);
  }
  return t;
}

std::vector<int> affinity_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return {};
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  return cpus;
}

const CpuTopology& cpu_topology() {
  static const CpuTopology topology = [] {
    std::vector<int> allowed = affinity_cpus();
    if (allowed.empty()) {
      allowed.resize(std::max(1u, std::thread::hardware_concurrency()));
      std::iota(allowed.begin(), allowed.end(), 0);
    }
    CpuTopology t = read_cpu_topology("/sys/devices/system/cpu", allowed);
    if (t.cpus.empty()) {
      // sysfs disagrees with the affinity mask (a container's view): trust the mask, one core per CPU.
      t.cpus = allowed;
      for (int cpu : allowed) t.cores.push_back({cpu});
    }
    return t;
  }();
  return topology;
}

}  // namespace onecard
