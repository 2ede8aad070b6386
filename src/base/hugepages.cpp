#include "base/hugepages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

namespace onecard {

std::string parse_thp_setting(std::string_view text) {
  const size_t open = text.find('[');
  const size_t close = text.find(']', open);
  if (open == std::string_view::npos || close == std::string_view::npos) return {};
  return std::string(text.substr(open + 1, close - open - 1));
}

std::string thp_setting() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  std::getline(in, line);
  return parse_thp_setting(line);
}

Status advise_hugepages(std::span<const uint8_t> mapping) {
  if (mapping.empty()) return {};
  if (madvise(const_cast<uint8_t*>(mapping.data()), mapping.size(), MADV_HUGEPAGE) != 0) {
    return make_error("madvise(MADV_HUGEPAGE) on {} bytes: {}", mapping.size(), std::strerror(errno));
  }
  return {};
}

MappingResidency parse_smaps(std::string_view smaps, uintptr_t begin, uintptr_t end) {
  MappingResidency r;
  bool inside = false;
  while (!smaps.empty()) {
    const size_t nl = smaps.find('\n');
    const std::string_view line = smaps.substr(0, nl);
    smaps = nl == std::string_view::npos ? std::string_view() : smaps.substr(nl + 1);
    // An area's header is "start-end perms offset dev inode path", in hex; field lines are "Name:  N kB".
    uintptr_t lo = 0, hi = 0;
    const char* p = line.data();
    const char* stop = line.data() + line.size();
    auto [after_lo, ec_lo] = std::from_chars(p, stop, lo, 16);
    if (ec_lo == std::errc() && after_lo < stop && *after_lo == '-') {
      auto [after_hi, ec_hi] = std::from_chars(after_lo + 1, stop, hi, 16);
      if (ec_hi == std::errc() && after_hi < stop && *after_hi == ' ') {
        inside = lo >= begin && hi <= end && lo < hi;
        if (inside) ++r.areas;
        continue;
      }
    }
    if (!inside) continue;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view name = line.substr(0, colon);
    uint64_t* field = name == "Rss"             ? &r.rss
                      : name == "FilePmdMapped" ? &r.file_pmd_mapped
                      : name == "AnonHugePages" ? &r.anon_huge
                                                : nullptr;
    if (field == nullptr) continue;
    const char* v = line.data() + colon + 1;
    while (v < stop && *v == ' ') ++v;
    uint64_t kib = 0;
    std::from_chars(v, stop, kib);
    *field += kib * 1024;
  }
  return r;
}

Result<MappingResidency> mapping_residency(std::span<const uint8_t> mapping) {
  std::ifstream in("/proc/self/smaps");
  if (!in) return make_error("/proc/self/smaps: cannot open: {}", std::strerror(errno));
  std::ostringstream s;
  s << in.rdbuf();
  const auto begin = reinterpret_cast<uintptr_t>(mapping.data());
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  // The mapping's last area ends at a page boundary past the file's end.
  return parse_smaps(s.str(), begin, (begin + mapping.size() + page - 1) / page * page);
}

}  // namespace onecard
