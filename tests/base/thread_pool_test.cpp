#include "base/thread_pool.h"

#include <atomic>
#include <vector>

#include <gtest/gtest.h>

namespace onecard {
namespace {

TEST(ThreadPool, EveryIndexRunsOnce) {
  ThreadPool pool(3);
  std::vector<std::atomic<int>> hits(1000);
  pool.parallel_for(
      1000,
      [&](int64_t i, int thread) {
        ASSERT_GE(thread, 0);
        ASSERT_LT(thread, 3);
        hits[static_cast<size_t>(i)].fetch_add(1);
      },
      7);
  for (const auto& h : hits) EXPECT_EQ(h.load(), 1);
}

TEST(ThreadPool, PlacementStartsEachWorkerAndKnowsItsNode) {
  std::vector<std::atomic<int>> started(4);
  ThreadPlacement placement;
  placement.nodes = {-1, 0, 1, 0};
  placement.on_start = [&](int thread) { started[static_cast<size_t>(thread)].fetch_add(1); };
  {
    ThreadPool pool(4, placement);
    EXPECT_EQ(pool.node(0), -1);
    EXPECT_EQ(pool.node(2), 1);
    EXPECT_EQ(pool.node(9), -1);
  }                                 // joined: every worker has started
  EXPECT_EQ(started[0].load(), 0);  // thread 0 is the caller's
  for (int t = 1; t < 4; ++t) EXPECT_EQ(started[static_cast<size_t>(t)].load(), 1);
  ThreadPool plain(2);
  EXPECT_EQ(plain.node(1), -1);
}

}  // namespace
}  // namespace onecard
