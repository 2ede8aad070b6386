// One persistent pool of worker threads for all parallel work. The caller takes part, so a pool of n threads
// starts n-1 workers. Work items are claimed from a shared counter (work stealing by chunks), so uneven items
// balance themselves; a call allocates nothing.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace onecard {

// Where a pool's threads run (base/placement.h fills it from the NUMA plan).
struct ThreadPlacement {
  std::vector<int> nodes;  // per thread (0: the caller): its NUMA node, -1 or absent: unknown
  std::function<void(int thread)> on_start;  // runs first in each worker thread (1..n-1): pins it, say
};

class ThreadPool {
 public:
  // n_threads <= 0: one per logical CPU.
  explicit ThreadPool(int n_threads = 0, ThreadPlacement placement = {});
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }
  // The NUMA node `thread` was placed on, or -1 where it was not (thread 0 runs on the caller's thread).
  int node(int thread) const {
    return static_cast<size_t>(thread) < nodes_.size() ? nodes_[static_cast<size_t>(thread)] : -1;
  }

  // Calls fn(i, thread) for every i in [0, n), thread in [0, size()), and returns when all calls are done.
  // Indices are claimed `grain` at a time. Calls must not throw. Not reentrant: fn must not use this pool.
  template <class F>
  void parallel_for(int64_t n, F&& fn, int64_t grain = 1) {
    auto call = [](void* ctx, int64_t i, int thread) { (*static_cast<F*>(ctx))(i, thread); };
    run(n, grain, call, &fn);
  }

 private:
  using Call = void (*)(void*, int64_t, int);
  void run(int64_t n, int64_t grain, Call call, void* ctx);
  void work(int thread);
  void worker_loop(int thread);

  std::vector<int> nodes_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> busy_{0};
  bool stop_ = false;

  // The current job.
  int64_t n_ = 0;
  int64_t grain_ = 1;
  Call call_ = nullptr;
  void* ctx_ = nullptr;
  std::atomic<int64_t> next_{0};
};

}  // namespace onecard
