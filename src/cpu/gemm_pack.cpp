// Packing for the batched kernel: activation panels (tokens interleaved per 4 columns) and unpacked weight
// rows (unsigned levels, then per-sub-block scales and offsets as floats).
#include <algorithm>
#include <cstring>

#include "base/half.h"
#include "cpu/gemm.h"
#include "quant/blocks.h"

namespace onecard::cpu {
namespace {

// Panel layout: levels [n/4][16] as uint32 (four signed activation bytes), then per sub-block [n/sub][16]
// the activation sums A as float (affine formats, for the offsets) or the integers -z * A (the others), then
// the activation scales [n/unit][16] as float.
size_t panel_levels_bytes(int64_t n) {
  return static_cast<size_t>(n) * 16;
}
size_t panel_sums_bytes(const IntFormat& f, int64_t n) {
  return static_cast<size_t>(n / f.sub) * 64;
}

}  // namespace

size_t panel_bytes(const IntFormat& f, int64_t n) {
  return panel_levels_bytes(n) + panel_sums_bytes(f, n) + static_cast<size_t>(n / f.unit) * 64;
}

void pack_panel(const IntFormat& f, int64_t n, const uint8_t* const* acts, int nt, uint8_t* panel) {
  auto* levels = reinterpret_cast<uint32_t*>(panel);
  uint8_t* sums = panel + panel_levels_bytes(n);
  auto* scales = reinterpret_cast<float*>(panel + panel_levels_bytes(n) + panel_sums_bytes(f, n));
  const int64_t units = n / f.unit;
  // Lanes without a token hold activations 0 with scale 0 (0.0f and int32 0 share their bytes).
  std::fill(levels, levels + n / 4 * 16, 0u);
  std::fill(sums, sums + panel_sums_bytes(f, n), uint8_t{0});
  std::fill(scales, scales + units * 16, 0.0f);
  const size_t a_bytes = act_block_bytes(f.act);
  for (int t = 0; t < nt; ++t) {
    for (int64_t u = 0; u < units; ++u) {
      const uint8_t* blk = acts[t] + u * a_bytes;
      const int8_t* qs;
      if (f.act == ActFormat::Q8_0) {
        const auto* b = reinterpret_cast<const quant::BlockQ8_0*>(blk);
        qs = b->qs;
        scales[u * 16 + t] = fp16_to_fp32(b->d);
      } else {
        const auto* b = reinterpret_cast<const quant::BlockQ8_K*>(blk);
        qs = b->qs;
        scales[u * 16 + t] = b->d;
      }
      const int64_t c0 = u * f.unit;
      for (int j = 0; j < f.unit; j += 4) {
        uint32_t v;
        std::memcpy(&v, qs + j, 4);
        levels[(c0 + j) / 4 * 16 + t] = v;
      }
      for (int b = 0; b < f.subs(); ++b) {
        int32_t s = 0;
        for (int j = b * f.sub; j < (b + 1) * f.sub; ++j) s += qs[j];
        const int64_t at = ((c0 / f.sub + b) * 16 + t) * 4;
        if (f.affine) {
          const auto v = static_cast<float>(s);
          std::memcpy(sums + at, &v, 4);
        } else {
          const int32_t v = -f.zero * s;
          std::memcpy(sums + at, &v, 4);
        }
      }
    }
  }
}

size_t unpacked_bytes(const IntFormat& f, int64_t n, int64_t nr) {
  const int64_t floats = nr * (n / f.sub) * (f.affine ? 2 : 1);
  return static_cast<size_t>(n * nr + floats * 4);
}

UnpackedRow unpacked_row(const IntFormat& f, int64_t n, int64_t nr, uint8_t* buf, int64_t r) {
  const int64_t subs = n / f.sub, stride = subs * (f.affine ? 2 : 1);
  float* s = reinterpret_cast<float*>(buf + n * nr) + r * stride;
  return {buf + r * n, s, s + subs, stride};
}

void unpack_rows(const IntFormat& f, const Matrix& w, int64_t r0, int64_t nr, uint8_t* buf) {
  // Only the AVX-512 path runs the batched kernel, so the vectorized unpacking can be assumed here.
  if (unpack_rows_avx512(f, w, r0, nr, buf)) return;
  const int64_t n = w.cols, units = n / f.unit;
  UnpackedUnit u;
  for (int64_t r = 0; r < nr; ++r) {
    const UnpackedRow out = unpacked_row(f, n, nr, buf, r);
    const uint8_t* src = w.row(r0 + r);
    for (int64_t i = 0; i < units; ++i) {
      f.unpack(src + i * f.unit_bytes, u);
      std::memcpy(out.levels + i * f.unit, u.q, static_cast<size_t>(f.unit));
      for (int b = 0; b < f.subs(); ++b) {
        const int64_t sb = i * f.subs() + b;
        out.s[sb] = u.s[b];
        if (f.affine) out.m[sb] = u.m[b];
      }
    }
  }
}

}  // namespace onecard::cpu
