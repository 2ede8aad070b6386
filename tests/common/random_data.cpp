#include "common/random_data.h"

#include "base/rng.h"

namespace onecard::test {

std::vector<float> nonzero_gaussian(int64_t n, uint64_t seed, std::string_view stream) {
  Rng rng(seed, stream);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) {
    do {
      v = rng.normal();
    } while (v == 0.0f);
  }
  return x;
}

}  // namespace onecard::test
