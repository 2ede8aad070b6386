#include "base/format.h"

#include <gtest/gtest.h>

namespace onecard {
namespace {

TEST(Format, HumanBytesAndCounts) {
  EXPECT_EQ(human_bytes(512), "512 B");
  EXPECT_EQ(human_bytes(1536), "1.50 KiB");
  EXPECT_EQ(human_bytes(70272ull * 1000), "67.02 MiB");
  EXPECT_EQ(human_count(999), "999");
  EXPECT_EQ(human_count(671026419200ull), "671.03 B");
  EXPECT_EQ(human_count(37552297472ull), "37.55 B");
}

}  // namespace
}  // namespace onecard
