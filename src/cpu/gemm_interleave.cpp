// The per-token sums and scales the batched kernel needs beside each quantized activation row.
#include <cstring>

#include "base/half.h"
#include "cpu/gemm.h"
#include "quant/blocks.h"

namespace onecard::cpu {

size_t token_side_bytes(const IntFormat& f, int64_t n) {
  return static_cast<size_t>(n / f.sub + n / f.unit) * 4;
}

void token_side(const IntFormat& f, int64_t n, const uint8_t* act, uint8_t* side) {
  const int64_t units = n / f.unit;
  const size_t a_bytes = act_block_bytes(f.act);
  auto* scales = reinterpret_cast<float*>(side + static_cast<size_t>(n / f.sub) * 4);
  for (int64_t u = 0; u < units; ++u) {
    const uint8_t* blk = act + u * a_bytes;
    const int8_t* qs;
    if (f.act == ActFormat::Q8_0) {
      const auto* b = reinterpret_cast<const quant::BlockQ8_0*>(blk);
      qs = b->qs;
      scales[u] = fp16_to_fp32(b->d);
    } else {
      const auto* b = reinterpret_cast<const quant::BlockQ8_K*>(blk);
      qs = b->qs;
      scales[u] = b->d;
    }
    for (int b = 0; b < f.subs(); ++b) {
      int32_t s = 0;
      for (int j = b * f.sub; j < (b + 1) * f.sub; ++j) s += qs[j];
      uint8_t* at = side + (u * f.subs() + b) * 4;
      if (f.affine) {
        const auto v = static_cast<float>(s);
        std::memcpy(at, &v, 4);
      } else {
        const int32_t v = -f.zero * s;
        std::memcpy(at, &v, 4);
      }
    }
  }
}

}  // namespace onecard::cpu
