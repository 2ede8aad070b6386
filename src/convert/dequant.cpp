#include "convert/dequant.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>

#include "base/half.h"

namespace onecard::convert {
namespace {

// Element i of a float tensor of any supported dtype.
float element(const StTensor& t, uint64_t i) {
  const uint8_t* p = t.data + i * dtype_size(t.dtype);
  switch (t.dtype) {
    case Dtype::kF32: {
      float v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case Dtype::kF64: {
      double v;
      std::memcpy(&v, p, 8);
      return static_cast<float>(v);
    }
    case Dtype::kF16:
    case Dtype::kBF16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return t.dtype == Dtype::kF16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
    }
    case Dtype::kF8_E4M3:
      return fp8_e4m3_to_fp32(*p);
    case Dtype::kF8_E5M2:
      return fp8_e5m2_to_fp32(*p);
    default:
      return 0.0f;  // integer dtypes are refused before any read
  }
}

std::array<float, 256> make_e4m3_table() {
  std::array<float, 256> t{};
  for (int v = 0; v < 256; ++v) {
    const int sign = v >> 7, exp = (v >> 3) & 15, man = v & 7;
    float x;
    if (exp == 15 && man == 7) {
      x = std::numeric_limits<float>::quiet_NaN();  // e4m3fn has no infinity, only this NaN
    } else if (exp == 0) {
      x = std::ldexp(static_cast<float>(man) / 8.0f, -6);
    } else {
      x = std::ldexp(1.0f + static_cast<float>(man) / 8.0f, exp - 7);
    }
    t[static_cast<size_t>(v)] = sign ? -x : x;
  }
  return t;
}

}  // namespace

float fp8_e4m3_to_fp32(uint8_t v) {
  static const std::array<float, 256> table = make_e4m3_table();
  return table[v];
}

float fp8_e5m2_to_fp32(uint8_t v) {
  return fp16_to_fp32(static_cast<uint16_t>(v << 8));  // e5m2 is the top byte of an IEEE half
}

void read_row(const StTensor& t, const BlockScales& s, uint64_t r, uint64_t cols, float* out) {
  const uint64_t base = r * cols;
  if (t.dtype == Dtype::kBF16) {  // the common case, without the per-element switch
    const auto* p = reinterpret_cast<const uint8_t*>(t.data) + base * 2;
    for (uint64_t c = 0; c < cols; ++c) {
      uint16_t h;
      std::memcpy(&h, p + c * 2, 2);
      out[c] = bf16_to_fp32(h);
    }
  } else {
    for (uint64_t c = 0; c < cols; ++c) out[c] = element(t, base + c);
  }
  if (s.scales == nullptr) return;
  const uint64_t scale_cols = s.scales->shape.back();
  const uint64_t srow = r / s.block_rows;
  for (uint64_t c0 = 0; c0 < cols; c0 += s.block_cols) {
    const float scale = element(*s.scales, srow * scale_cols + c0 / s.block_cols);
    const uint64_t c1 = std::min<uint64_t>(cols, c0 + s.block_cols);
    for (uint64_t c = c0; c < c1; ++c) out[c] *= scale;
  }
}

Fp8Range fp8_range(Dtype fp8, const StTensor& scales) {
  const float format_max = fp8 == Dtype::kF8_E5M2 ? 57344.0f : 448.0f;
  Fp8Range r;
  for (uint64_t i = 0; i < scales.n_elements(); ++i) {
    const float s = std::fabs(element(scales, i));
    if (!std::isfinite(s)) {
      r.finite = false;
      continue;
    }
    if (s == 0.0f) continue;  // an all-zero block, exact in any type
    const float m = s * format_max;
    r.max_abs = std::max(r.max_abs, m);
    r.min_block_max = r.min_block_max == 0.0f ? m : std::min(r.min_block_max, m);
  }
  return r;
}

}  // namespace onecard::convert
