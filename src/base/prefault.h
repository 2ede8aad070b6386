// Touches every page of a mapped region on all of a pool's threads, so that a server takes its page faults
// (and its disk reads) at load instead of during the first requests. The page cache places a file page on
// the memory node of the thread that reads it in, or by that thread's memory policy.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "base/thread_pool.h"

namespace onecard {

struct PrefaultOptions {
  uint64_t chunk_bytes = uint64_t{64} << 20;  // claimed by one thread at a time; a multiple of the page size
  // Called on the calling thread after each chunk it finishes and once at the end, with the bytes done by
  // all threads so far; returning false stops the work (the chunks in progress finish).
  std::function<bool(uint64_t done)> progress;
  // Called on each thread before its first chunk: sets its memory policy, say.
  std::function<void(int thread)> on_thread;
};

struct PrefaultResult {
  uint64_t bytes = 0;     // of the region covered by finished chunks
  uint64_t checksum = 0;  // sum of the bytes read (one per page), so the reads cannot be optimised away
  bool stopped = false;   // progress returned false
};

// Reads the first byte of `region` and the byte at every page boundary inside it, after asking the kernel
// to read each chunk ahead (MADV_WILLNEED; failures there only cost speed).
PrefaultResult prefault(std::span<const uint8_t> region, ThreadPool& pool, const PrefaultOptions& options);

}  // namespace onecard
