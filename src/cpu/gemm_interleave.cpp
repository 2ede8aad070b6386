// The parts of the batched kernel that any CPU can run: per-token sums and scales, and the interleaving of
// formats without a vectorized unpacker (through each format's scalar unpack).
#include <algorithm>
#include <cstring>

#include "base/half.h"
#include "cpu/gemm.h"
#include "cpu/unpack_avx512.h"
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

namespace gemm_detail {

void interleave_unit_generic(const IntFormat& f, const uint8_t* row0, size_t row_bytes, int valid, int64_t u,
                             uint8_t* out) {
  auto* s = reinterpret_cast<float*>(out + f.unit * kLanes);
  float* m = s + f.subs() * kLanes;
  // Only AVX-512 CPUs run the batched kernel, so the vector unpackers can be used.
  const UnpackFn fast = unpack_avx512(f.type);
  const UnpackFn unpack = fast != nullptr ? fast : f.unpack;
  UnpackedUnit unit;
  for (int lane = 0; lane < kLanes; ++lane) {
    const uint8_t* row = row0 + static_cast<size_t>(std::min(lane, valid - 1)) * row_bytes;
    unpack(row + u * f.unit_bytes, unit);
    for (int c = 0; c < f.unit; ++c) out[(c / 4) * 64 + lane * 4 + c % 4] = unit.q[c];
    for (int b = 0; b < f.subs(); ++b) {
      s[b * kLanes + lane] = unit.s[b];
      if (f.affine) m[b * kLanes + lane] = unit.m[b];
    }
  }
}

}  // namespace gemm_detail
}  // namespace onecard::cpu
