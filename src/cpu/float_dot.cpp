#include "cpu/float_dot.h"

#include "base/half.h"

namespace onecard::cpu {
namespace {

template <class T, float (*Widen)(T)>
void dot_rows(const void* w, const float* x, int64_t ldx, int nt, int64_t n, float* out) {
  const T* wr = static_cast<const T*>(w);
  for (int t = 0; t < nt; ++t) {
    const float* xt = x + t * ldx;
    // Eight partial sums, like the SIMD versions, so results differ from them by rounding only.
    float s[8] = {};
    int64_t c = 0;
    for (; c + 8 <= n; c += 8) {
      for (int j = 0; j < 8; ++j) s[j] += Widen(wr[c + j]) * xt[c + j];
    }
    float sum = 0;
    for (; c < n; ++c) sum += Widen(wr[c]) * xt[c];
    out[t] = sum + ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
  }
}

float identity(float v) {
  return v;
}

}  // namespace

bool is_float_type(gguf::GgmlType type) {
  return type == gguf::GgmlType::F32 || type == gguf::GgmlType::F16 || type == gguf::GgmlType::BF16;
}

FloatDotFn float_dot_scalar(gguf::GgmlType type) {
  switch (type) {
    case gguf::GgmlType::F32:
      return dot_rows<float, identity>;
    case gguf::GgmlType::F16:
      return dot_rows<uint16_t, fp16_to_fp32>;
    case gguf::GgmlType::BF16:
      return dot_rows<uint16_t, bf16_to_fp32>;
    default:
      return nullptr;
  }
}

}  // namespace onecard::cpu
