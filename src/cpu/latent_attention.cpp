// The reference latent-attention products, one multiply-add at a time.
#include "cpu/latent_attention.h"

#include "base/half.h"

namespace onecard::cpu {
namespace {

inline float value(const float* r, int64_t i) {
  return r[i];
}
inline float value(const uint16_t* r, int64_t i) {
  return bf16_to_fp32(r[i]);
}

template <class T>
void scores(const float* q, int g, int64_t ldq, const void* rows, int64_t m, int64_t width, float scale,
            float* s, int64_t lds) {
  const auto* r = static_cast<const T*>(rows);
  for (int j = 0; j < g; ++j) {
    for (int64_t p = 0; p < m; ++p) {
      float acc = 0;
      for (int64_t c = 0; c < width; ++c) acc += q[j * ldq + c] * value(r + p * width, c);
      s[j * lds + p] = acc * scale;
    }
  }
}

template <class T>
void sum(const float* w, int64_t ldw, int g, const void* rows, int64_t m, int64_t width, int64_t n, float* o,
         int64_t ldo) {
  const auto* r = static_cast<const T*>(rows);
  for (int j = 0; j < g; ++j) {
    for (int64_t p = 0; p < m; ++p) {
      const float a = w[j * ldw + p];
      for (int64_t c = 0; c < n; ++c) o[j * ldo + c] += a * value(r + p * width, c);
    }
  }
}

}  // namespace

LatentKernels latent_scalar(bool bf16) {
  return bf16 ? LatentKernels{scores<uint16_t>, sum<uint16_t>} : LatentKernels{scores<float>, sum<float>};
}

}  // namespace onecard::cpu
