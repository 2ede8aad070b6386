#include "base/thread_pool.h"

#include <chrono>
#include <utility>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace onecard {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

// Workers spin this long for the next job before sleeping: decode issues many short parallel calls in a row,
// and waking a sleeping thread costs more than the work of one of them.
constexpr auto kSpin = std::chrono::microseconds(200);

}  // namespace

ThreadPool::ThreadPool(int n_threads, ThreadPlacement placement) : nodes_(std::move(placement.nodes)) {
  if (n_threads <= 0) n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  workers_.reserve(n_threads - 1);
  for (int t = 1; t < n_threads; ++t) {
    workers_.emplace_back([this, t, on_start = placement.on_start] {
      if (on_start) on_start(t);
      worker_loop(t);
    });
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::work(int thread) {
  for (;;) {
    const int64_t begin = next_.fetch_add(grain_, std::memory_order_relaxed);
    if (begin >= n_) break;
    const int64_t end = std::min(n_, begin + grain_);
    for (int64_t i = begin; i < end; ++i) call_(ctx_, i, thread);
  }
}

void ThreadPool::run(int64_t n, int64_t grain, Call call, void* ctx) {
  if (n <= 0) return;
  if (workers_.empty() || n <= 1) {
    for (int64_t i = 0; i < n; ++i) call(ctx, i, 0);
    return;
  }
  n_ = n;
  grain_ = std::max<int64_t>(1, grain);
  call_ = call;
  ctx_ = ctx;
  next_.store(0, std::memory_order_relaxed);
  busy_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  work(0);
  // Spin briefly, then yield: on an oversubscribed machine a descheduled worker needs this core to finish.
  for (int spins = 0; busy_.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < 2000) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
}

void ThreadPool::worker_loop(int thread) {
  uint64_t seen = 0;
  for (;;) {
    const auto spin_until = std::chrono::steady_clock::now() + kSpin;
    while (generation_.load(std::memory_order_acquire) == seen &&
           std::chrono::steady_clock::now() < spin_until) {
      cpu_relax();
    }
    if (generation_.load(std::memory_order_acquire) == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
    }
    seen = generation_.load(std::memory_order_acquire);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
    }
    work(thread);
    busy_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace onecard
