#include "base/prefault.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <vector>

namespace onecard {

PrefaultResult prefault(std::span<const uint8_t> region, ThreadPool& pool, const PrefaultOptions& options) {
  PrefaultResult result;
  if (region.empty()) return result;
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uint64_t chunk = std::max<uint64_t>(page, options.chunk_bytes / page * page);
  const auto base = reinterpret_cast<uintptr_t>(region.data());
  const uintptr_t first_page = base / page * page;
  // Chunks are page-aligned in the address space so that no page is read by two threads.
  const uint64_t span = base + region.size() - first_page;
  const int64_t n_chunks = static_cast<int64_t>((span + chunk - 1) / chunk);

  std::atomic<uint64_t> done{0};
  std::atomic<bool> stop{false};
  std::vector<uint64_t> sums(static_cast<size_t>(pool.size()), 0);
  std::vector<char> started(static_cast<size_t>(pool.size()), 0);
  pool.parallel_for(n_chunks, [&](int64_t c, int thread) {
    if (stop.load(std::memory_order_relaxed)) return;
    if (options.on_thread && !started[static_cast<size_t>(thread)]) {
      started[static_cast<size_t>(thread)] = 1;
      options.on_thread(thread);
    }
    const uintptr_t lo = std::max<uintptr_t>(base, first_page + static_cast<uint64_t>(c) * chunk);
    const uintptr_t hi = std::min<uintptr_t>(base + region.size(), first_page + (c + 1) * chunk);
    const uintptr_t advise_lo = lo / page * page;
    madvise(reinterpret_cast<void*>(advise_lo), hi - advise_lo, MADV_WILLNEED);
    uint64_t sum = 0;
    for (uintptr_t p = lo; p < hi; p = (p / page + 1) * page)
      sum += *reinterpret_cast<const volatile uint8_t*>(p);
    sums[static_cast<size_t>(thread)] += sum;
    const uint64_t now = done.fetch_add(hi - lo, std::memory_order_relaxed) + (hi - lo);
    if (thread == 0 && options.progress && !options.progress(now))
      stop.store(true, std::memory_order_relaxed);
  });
  result.bytes = done.load();
  // The workers may have claimed every chunk, so the caller reports the end itself: progress always
  // reaches the region's size.
  if (!stop.load() && options.progress && !options.progress(result.bytes)) stop.store(true);
  for (uint64_t s : sums) result.checksum += s;
  result.stopped = stop.load();
  return result;
}

}  // namespace onecard
