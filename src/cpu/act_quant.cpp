#include "cpu/act_quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/half.h"
#include "cpu/kernels.h"
#include "quant/blocks.h"

namespace onecard::cpu {
namespace {

int level(float x, float iscale) {
  return std::clamp(static_cast<int>(std::nearbyint(x * iscale)), -127, 127);
}

float abs_max(const float* x, int n) {
  float amax = 0;
  for (int i = 0; i < n; ++i) amax = std::max(amax, std::abs(x[i]));
  return amax;
}

}  // namespace

void quantize_act_scalar(ActFormat f, const float* x, void* dst, int64_t n) {
  if (f == ActFormat::Q8_0) {
    auto* y = static_cast<quant::BlockQ8_0*>(dst);
    uint8_t* scales = static_cast<uint8_t*>(dst) + act_q8_0_scales_at(n);
    uint8_t* sums = static_cast<uint8_t*>(dst) + act_q8_0_sums_at(n);
    for (int64_t b = 0; b < n / quant::kQK; ++b, x += quant::kQK) {
      // Levels are rounded against the stored (fp16) scale, so that d * q is what the kernels multiply.
      y[b].d = fp32_to_fp16(abs_max(x, quant::kQK) / 127.0f);
      const float d = fp16_to_fp32(y[b].d);
      const float iscale = d != 0.0f ? 1.0f / d : 0.0f;
      int32_t sum = 0;
      for (int j = 0; j < quant::kQK; ++j) {
        y[b].qs[j] = static_cast<int8_t>(level(x[j], iscale));
        sum += y[b].qs[j];
      }
      std::memcpy(scales + 4 * b, &d, 4);
      std::memcpy(sums + 4 * b, &sum, 4);
    }
    return;
  }
  auto* y = static_cast<quant::BlockQ8_K*>(dst);
  for (int64_t b = 0; b < n / quant::kQK_K; ++b, x += quant::kQK_K) {
    const float d = abs_max(x, quant::kQK_K) / 127.0f;
    const float iscale = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = d;
    for (int g = 0; g < quant::kQK_K / 16; ++g) {
      int sum = 0;
      for (int j = 16 * g; j < 16 * (g + 1); ++j) {
        y[b].qs[j] = static_cast<int8_t>(level(x[j], iscale));
        sum += y[b].qs[j];
      }
      y[b].bsums[g] = static_cast<int16_t>(sum);
    }
  }
}

void quantize_act(ActFormat f, const float* x, void* dst, int64_t n) {
  best_kernels().quantize_act(f, x, dst, n);
}

}  // namespace onecard::cpu
