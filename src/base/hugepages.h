// Transparent huge pages for a mapped file, and what the kernel made of the request. 2 MiB pages cut the
// TLB misses of streaming hundreds of GB of weights; for a file mapping the kernel gives them only where its
// page cache supports large folios or khugepaged collapses read-only file pages, so asking may do nothing.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"

namespace onecard {

// The word in brackets of /sys/kernel/mm/transparent_hugepage/enabled ("always [madvise] never"), or
// empty when there is none.
std::string parse_thp_setting(std::string_view text);
// This system's setting; empty where the file is missing (a kernel without THP).
std::string thp_setting();

// madvise(MADV_HUGEPAGE) on `mapping`, which must start on a page boundary. The error names the call and
// errno (EINVAL: the kernel has no THP for this mapping).
Status advise_hugepages(std::span<const uint8_t> mapping);

struct MappingResidency {
  uint64_t rss = 0;              // resident bytes
  uint64_t file_pmd_mapped = 0;  // file pages mapped as 2 MiB pages
  uint64_t anon_huge = 0;        // anonymous huge pages
  int areas = 0;                 // smaps entries summed (mbind and madvise split a mapping)
};

// Sums the smaps entries that lie inside [begin, end) of the text of /proc/PID/smaps.
MappingResidency parse_smaps(std::string_view smaps, uintptr_t begin, uintptr_t end);
// The same from /proc/self/smaps for `mapping`. The kernel walks the page tables to answer: about 15 ms per
// GB mapped in 4 KiB pages (measured on the VM).
Result<MappingResidency> mapping_residency(std::span<const uint8_t> mapping);

}  // namespace onecard
