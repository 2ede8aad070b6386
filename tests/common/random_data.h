// Random test inputs shared by the kernel tests.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace onecard::test {

// n standard normal values, none of them zero (a zero would hide a kernel that skips an element), from the
// generator seeded by (seed, stream).
std::vector<float> nonzero_gaussian(int64_t n, uint64_t seed, std::string_view stream);

}  // namespace onecard::test
