#include "cuda/device.h"

#include <gtest/gtest.h>

namespace onecard::cuda {
namespace {

// CI has no GPU: there the list is empty, with the driver's reason, and the test is skipped.
TEST(CudaDevices, ListedWithTheirProperties) {
  std::string why;
  const auto devices = list_devices(&why);
  if (devices.empty()) {
    EXPECT_FALSE(why.empty());
    GTEST_SKIP() << "no CUDA device: " << why;
  }
  for (const auto& d : devices) {
    EXPECT_FALSE(d.name.empty());
    EXPECT_GE(d.compute_major, 7);  // CUDA 13 supports Turing and later
    EXPECT_GT(d.multiprocessors, 0);
    EXPECT_GT(d.memory_total, 0u);
    EXPECT_LE(d.memory_free, d.memory_total);
  }
}

}  // namespace
}  // namespace onecard::cuda
