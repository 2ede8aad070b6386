// The batched kernel: kGemmRows unpacked weight rows times one 16-lane panel, AVX-512 VNNI.
#include <algorithm>

#include "cpu/gemm.h"
#include "cpu/x86.h"

namespace onecard::cpu {
namespace {

struct Prefetch {
  const uint8_t* data;
  int64_t lines;           // 64-byte lines from data
  int64_t lines_per_step;  // issued per unit (activation block) step
};

// R rows (R <= kGemmRows) over all n columns. Per sub-block: SUB / 4 vpdpbusd per row into int32 lanes that
// start from the panel's -z * A (the zero point, exactly), then one float step with the row's scale (and, for
// affine formats, its offset times the tokens' activation sums); per unit the tokens' activation scales.
template <int R, int SUB, int UNIT, bool AFFINE>
ONECARD_AVX512 void rows_kernel(int64_t n, const uint8_t* levels0, const float* s, const float* m,
                                int64_t stride, const uint8_t* panel, int nt, float* y, int64_t ldy,
                                Prefetch pf) {
  constexpr int kSubs = UNIT / SUB;
  const auto* levels = reinterpret_cast<const int32_t*>(panel);
  const uint8_t* sums = panel + n * 16;
  const auto* scales = reinterpret_cast<const float*>(panel + n * 16 + n / SUB * 64);
  const uint8_t* w[R];
  for (int r = 0; r < R; ++r) w[r] = levels0 + r * n;
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t u = 0; u < n / UNIT; ++u) {
    for (int64_t l = u * pf.lines_per_step; l < std::min(pf.lines, (u + 1) * pf.lines_per_step); ++l) {
      _mm_prefetch(reinterpret_cast<const char*>(pf.data) + 64 * l, _MM_HINT_T1);
    }
    __m512 unit_acc[R];
    for (int r = 0; r < R; ++r) unit_acc[r] = _mm512_setzero_ps();
    for (int b = 0; b < kSubs; ++b) {
      const int64_t sb = u * kSubs + b, c0 = sb * SUB;
      const __m512i start = AFFINE ? _mm512_setzero_si512() : _mm512_loadu_si512(sums + sb * 64);
      __m512i dot[R];
      for (int r = 0; r < R; ++r) dot[r] = start;
      for (int k = 0; k < SUB; k += 4) {
        const __m512i a = _mm512_loadu_si512(levels + (c0 + k) / 4 * 16);
        for (int r = 0; r < R; ++r) {
          int32_t wq;
          std::memcpy(&wq, w[r] + c0 + k, 4);
          dot[r] = _mm512_dpbusd_epi32(dot[r], _mm512_set1_epi32(wq), a);
        }
      }
      for (int r = 0; r < R; ++r) {
        unit_acc[r] =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[r]), _mm512_set1_ps(s[r * stride + sb]), unit_acc[r]);
      }
      if constexpr (AFFINE) {
        const __m512 asum = _mm512_loadu_ps(reinterpret_cast<const float*>(sums + sb * 64));
        for (int r = 0; r < R; ++r) {
          unit_acc[r] = _mm512_fmadd_ps(asum, _mm512_set1_ps(m[r * stride + sb]), unit_acc[r]);
        }
      }
    }
    const __m512 ad = _mm512_loadu_ps(scales + u * 16);
    for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(unit_acc[r], ad, acc[r]);
  }
  alignas(64) float out[16];
  for (int r = 0; r < R; ++r) {
    _mm512_store_ps(out, acc[r]);
    for (int t = 0; t < nt; ++t) y[t * ldy + r] = out[t];
  }
}

using Kernel = void (*)(int64_t, const uint8_t*, const float*, const float*, int64_t, const uint8_t*, int,
                        float*, int64_t, Prefetch);

template <int SUB, int UNIT, bool AFFINE>
Kernel pick(int64_t r) {
  switch (r) {
    case 1:
      return rows_kernel<1, SUB, UNIT, AFFINE>;
    case 2:
      return rows_kernel<2, SUB, UNIT, AFFINE>;
    case 3:
      return rows_kernel<3, SUB, UNIT, AFFINE>;
    case 4:
      return rows_kernel<4, SUB, UNIT, AFFINE>;
    case 5:
      return rows_kernel<5, SUB, UNIT, AFFINE>;
    case 6:
      return rows_kernel<6, SUB, UNIT, AFFINE>;
    case 7:
      return rows_kernel<7, SUB, UNIT, AFFINE>;
    default:
      return rows_kernel<8, SUB, UNIT, AFFINE>;
  }
}

Kernel kernel_for(const IntFormat& f, int64_t r) {
  if (f.unit == 32) return f.affine ? pick<32, 32, true>(r) : pick<32, 32, false>(r);
  if (f.sub == 32) return f.affine ? pick<32, 256, true>(r) : pick<32, 256, false>(r);
  return f.affine ? pick<16, 256, true>(r) : pick<16, 256, false>(r);
}

}  // namespace

void gemm_panel(const IntFormat& f, int64_t n, const uint8_t* rows, int64_t nr, const uint8_t* panel, int nt,
                float* y, int64_t ldy, const uint8_t* prefetch, size_t prefetch_bytes) {
  const int64_t calls = (nr + kGemmRows - 1) / kGemmRows, steps = n / f.unit;
  // The prefetch range is spread evenly over the kernel calls and their unit steps.
  const auto lines = static_cast<int64_t>((prefetch_bytes + 63) / 64);
  const int64_t per_call = (lines + calls - 1) / calls;
  for (int64_t r0 = 0, c = 0; r0 < nr; r0 += kGemmRows, ++c) {
    const int64_t r = std::min<int64_t>(kGemmRows, nr - r0);
    const int64_t first = std::min(lines, c * per_call), count = std::min(per_call, lines - first);
    const Prefetch pf{prefetch + 64 * first, count, (count + steps - 1) / steps};
    const UnpackedRow row = unpacked_row(f, n, nr, const_cast<uint8_t*>(rows), r0);
    kernel_for(f, r)(n, row.levels, row.s, row.m, row.stride, panel, nt, y + r0, ldy, pf);
  }
}

}  // namespace onecard::cpu
