
#include "base/half.h"
#include "cpu/vec_dot.h"
#include "quant/blocks.h"

namespace onecard::cpu {

float vec_dot_scalar(const IntFormat& f, int64_t n, const void* w, const void* a) {
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* ab = static_cast<const uint8_t*>(a);
  const size_t a_bytes = act_block_bytes(f.act);
  UnpackedUnit u;
  float sum = 0;
  for (int64_t i = 0; i < n / f.unit; ++i, wb += f.unit_bytes, ab += a_bytes) {
    f.unpack(wb, u);
    const int8_t* qa;
    float ad;
    if (f.act == ActFormat::Q8_0) {
      const auto* blk = reinterpret_cast<const quant::BlockQ8_0*>(ab);
      qa = blk->qs;
      ad = fp16_to_fp32(blk->d);
    } else {
      const auto* blk = reinterpret_cast<const quant::BlockQ8_K*>(ab);
      qa = blk->qs;
      ad = blk->d;
    }
    float acc = 0;
    for (int b = 0; b < f.subs(); ++b) {
      int32_t dot = 0, asum = 0;
      for (int j = b * f.sub; j < (b + 1) * f.sub; ++j) {
        dot += u.q[j] * qa[j];
        asum += qa[j];
      }
      acc += u.s[b] * static_cast<float>(dot - f.zero * asum) + u.m[b] * static_cast<float>(asum);
    }
    sum += ad * acc;
  }
  return sum;
}

}  // namespace onecard::cpu
