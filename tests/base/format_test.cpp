#include "base/format.h"

#include <fmt/format.h>
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

TEST(Format, ParseBytesUnits) {
  EXPECT_EQ(parse_bytes("24GiB").value(), 24ull << 30);
  EXPECT_EQ(parse_bytes("24G").value(), 24ull << 30);
  EXPECT_EQ(parse_bytes("24 gib").value(), 24ull << 30);
  EXPECT_EQ(parse_bytes("512MiB").value(), 512ull << 20);
  EXPECT_EQ(parse_bytes("1.5GB").value(), 1500000000ull);
  EXPECT_EQ(parse_bytes("0.5K").value(), 512u);
  EXPECT_EQ(parse_bytes("4096B").value(), 4096u);
  EXPECT_EQ(parse_bytes("2TB").value(), 2000000000000ull);
}

TEST(Format, ParseBytesErrorsQuoteTheText) {
  for (const char* bad : {"24", "", "GiB", "-1GiB", "24 parsecs", "1e30TiB", "nanGiB"}) {
    const auto r = parse_bytes(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message().find(fmt::format("'{}'", bad)), std::string::npos) << r.error().message();
  }
  EXPECT_NE(parse_bytes("24").error().message().find("no unit"), std::string::npos);
  EXPECT_NE(parse_bytes("24 parsecs").error().message().find("unknown unit 'parsecs'"), std::string::npos);
}

}  // namespace
}  // namespace onecard
