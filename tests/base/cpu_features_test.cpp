#include "base/cpu_features.h"

#include <gtest/gtest.h>

namespace onecard {
namespace {

TEST(CpuFeatures, ImpliedFeaturesAreConsistent) {
  const CpuFeatures& f = cpu_features();
  // Wider extensions imply the narrower ones they build on.
  EXPECT_TRUE(!f.avx2 || f.avx);
  EXPECT_TRUE(!(f.avx512bw || f.avx512vl || f.avx512_vnni || f.avx512_bf16) || f.avx512f);
  EXPECT_TRUE(!f.avx512f || f.avx2);
  EXPECT_TRUE(!(f.amx_int8 || f.amx_bf16) || f.amx_tile);
  EXPECT_FALSE(f.summary().empty());
#if defined(__x86_64__)
  EXPECT_FALSE(f.vendor.empty());
#endif
}

TEST(SystemInfo, ReportsCpusAndMemory) {
  const SystemInfo s = system_info();
  EXPECT_GE(s.logical_cpus, 1u);
  EXPECT_GT(s.memory_total, 0u);
  EXPECT_LE(s.memory_available, s.memory_total);
}

}  // namespace
}  // namespace onecard
