#include "common/golden_logits.h"

#include <algorithm>
#include <cmath>

namespace onecard::test {

Agreement compare_logits(const std::vector<float>& got, const std::vector<float>& want, size_t vocab) {
  Agreement a;
  const size_t n = want.size() / vocab;
  size_t same = 0;
  for (size_t t = 0; t < n; ++t) {
    double diff = 0, norm = 0;
    size_t arg_got = 0, arg_want = 0;
    for (size_t i = 0; i < vocab; ++i) {
      const double g = got[t * vocab + i], w = want[t * vocab + i];
      diff += (g - w) * (g - w);
      norm += w * w;
      if (g > got[t * vocab + arg_got]) arg_got = i;
      if (w > want[t * vocab + arg_want]) arg_want = i;
    }
    a.max_rel = std::max(a.max_rel, std::sqrt(diff / norm));
    same += arg_got == arg_want ? 1 : 0;
  }
  a.top1 = static_cast<double>(same) / static_cast<double>(n);
  return a;
}

}  // namespace onecard::test
