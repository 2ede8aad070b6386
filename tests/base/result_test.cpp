#include "base/result.h"

#include <gtest/gtest.h>

namespace onecard {
namespace {

Result<int> parse_positive(int x) {
  if (x <= 0) return make_error("{} is not positive", x);
  return x;
}

Result<int> doubled(int x) {
  ONECARD_ASSIGN_OR_RETURN(int v, parse_positive(x));
  return 2 * v;
}

Status check_all(int a, int b) {
  ONECARD_TRY(parse_positive(a));
  ONECARD_TRY(parse_positive(b));
  return {};
}

TEST(Result, CarriesValueOrError) {
  EXPECT_EQ(doubled(4).value(), 8);
  const auto bad = doubled(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(), "-1 is not positive");
  EXPECT_TRUE(check_all(1, 2).ok());
  EXPECT_EQ(check_all(1, 0).error().message(), "0 is not positive");
  EXPECT_EQ(bad.error().with_context("file.gguf").message(), "file.gguf: -1 is not positive");
}

TEST(ResultDeathTest, ValueOfErrorAborts) {
  EXPECT_DEATH((void)parse_positive(0).value(), "0 is not positive");
}

}  // namespace
}  // namespace onecard
