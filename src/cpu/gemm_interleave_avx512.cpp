// AVX-512 interleaving of the formats prefill and MoE batches spend their time on. Each unit is transposed as
// the raw bytes of the file (the bit operations that extract levels act on every byte alike, so they work as
// well after the transpose), and each row's scales are fetched into its lane by gathers and decoded in
// vectors. Other formats are unpacked row by row (vector unpackers where there are, scalar otherwise) and the
// unpacked rows transposed the same way.
#include <algorithm>

#include "cpu/kernels.h"
#include "cpu/x86.h"
#include "cpu/x86/avx512/gemm.h"
#include "quant/blocks.h"

namespace onecard::cpu::gemm_detail {
namespace {

using quant::BlockQ4_K;
using quant::BlockQ6_K;
using quant::BlockQ8_0;

struct Rows {
  const uint8_t* row0;
  size_t row_bytes;
  int valid;
  __m512i offsets;  // of each lane's row from row0, for gathers

  const uint8_t* row(int lane) const {
    return row0 + static_cast<size_t>(std::min(lane, valid - 1)) * row_bytes;
  }
};

// 32 bytes at `offset` in each of the 16 rows, transposed by dwords: out[k] holds bytes 4k..4k+3 of row i in
// lane i.
ONECARD_AVX512 inline void transpose_32(const Rows& r, size_t offset, __m512i out[8]) {
  __m512i p[8];
  for (int i = 0; i < 8; ++i) {
    // Row i in the low half, row i + 8 in the high half: each half is an 8 x 8 transpose of its own.
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r.row(i) + offset));
    const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r.row(i + 8) + offset));
    p[i] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  }
  __m512i t[8], s[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm512_unpacklo_epi32(p[i], p[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(p[i], p[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    s[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    s[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    s[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    s[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // s[j] (rows 0-3) and s[j + 4] (rows 4-7) hold dword j in 128-bit lanes 0 and 2, dword j + 4 in 1 and 3.
  const __m512i first = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
  const __m512i second = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
  for (int j = 0; j < 4; ++j) {
    out[j] = _mm512_permutex2var_epi64(s[j], first, s[j + 4]);
    out[j + 4] = _mm512_permutex2var_epi64(s[j], second, s[j + 4]);
  }
}

// The dword at `offset` of every row, one per lane.
ONECARD_AVX512 inline __m512i gather(const Rows& r, size_t offset) {
  return _mm512_i32gather_epi32(r.offsets, r.row0 + offset, 1);
}

// One unit of the 16 rows; `offset` is within the unit's block.
struct Unit {
  Rows rows;
  size_t base;  // the unit's offset in each row

  ONECARD_AVX512 void t32(size_t offset, __m512i out[8]) const { transpose_32(rows, base + offset, out); }
  ONECARD_AVX512 __m512i dwords(size_t offset) const { return gather(rows, base + offset); }
};

ONECARD_AVX512 __m512 halves_to_float(__m512i v) {
  return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v));
}

ONECARD_AVX512 void store(uint8_t* out, int chunk, __m512i v) {
  _mm512_storeu_si512(out + 64 * chunk, v);
}

// Q4_K's scales (d * scale of each sub-block) and its integer mins with -dmin (gemm.h), from the 4 dwords
// that hold them.
ONECARD_AVX512 void q4_k_scales(const Unit& src, uint8_t* out) {
  const __m512i dd = src.dwords(0);
  const __m512 d = halves_to_float(dd), neg_dmin = -halves_to_float(_mm512_srli_epi32(dd, 16));
  const __m512i u0 = src.dwords(4), u1 = src.dwords(8), u2 = src.dwords(12);
  const __m512i m6 = _mm512_set1_epi32(63), m2 = _mm512_set1_epi32(3), low4 = _mm512_set1_epi32(15);
  auto* s = reinterpret_cast<float*>(out + 256 * kLanes);
  auto* mins = reinterpret_cast<__m512i*>(s + 8 * kLanes);
  __m512i mn_of[8];
  for (int b = 0; b < 4; ++b) {
    const __m512i sc = _mm512_and_si512(_mm512_srli_epi32(u0, 8 * b), m6);
    const __m512i mn = _mm512_and_si512(_mm512_srli_epi32(u1, 8 * b), m6);
    const __m512i sc_hi =
        _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(u2, 8 * b), low4),
                        _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u0, 8 * b + 6), m2), 4));
    const __m512i mn_hi =
        _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(u2, 8 * b + 4), low4),
                        _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u1, 8 * b + 6), m2), 4));
    _mm512_storeu_ps(s + b * kLanes, _mm512_mul_ps(_mm512_cvtepi32_ps(sc), d));
    _mm512_storeu_ps(s + (b + 4) * kLanes, _mm512_mul_ps(_mm512_cvtepi32_ps(sc_hi), d));
    mn_of[b] = mn;
    mn_of[b + 4] = mn_hi;
  }
  for (int i = 0; i < 4; ++i)
    _mm512_storeu_si512(mins + i, _mm512_or_si512(mn_of[2 * i], _mm512_slli_epi32(mn_of[2 * i + 1], 16)));
  _mm512_storeu_ps(mins + 4, neg_dmin);
}

ONECARD_AVX512 void q4_k(const Unit& src, uint8_t* out) {
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  for (int j = 0; j < 4; ++j) {
    __m512i q[8];
    src.t32(offsetof(BlockQ4_K, qs) + 32 * j, q);
    for (int k = 0; k < 8; ++k) {
      store(out, 16 * j + k, _mm512_and_si512(q[k], m4));
      store(out, 16 * j + 8 + k, _mm512_and_si512(_mm512_srli_epi16(q[k], 4), m4));
    }
  }
  q4_k_scales(src, out);
}

ONECARD_AVX512 void q6_k(const Unit& src, uint8_t* out) {
  const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
  for (int h = 0; h < 2; ++h) {
    // Columns 128h + l, + 32, + 64, + 96 (l < 32) take the low and high nibbles of ql[64h + l] and
    // ql[64h + 32 + l], and bit pairs 0-1, 2-3, 4-5, 6-7 of qh[32h + l].
    __m512i a[8], b[8], q[8];
    src.t32(offsetof(BlockQ6_K, ql) + 64 * h, a);
    src.t32(offsetof(BlockQ6_K, ql) + 64 * h + 32, b);
    src.t32(offsetof(BlockQ6_K, qh) + 32 * h, q);
    for (int k = 0; k < 8; ++k) {
      const int c = 32 * h + k;
      store(out, c,
            _mm512_or_si512(_mm512_and_si512(a[k], m4), _mm512_and_si512(_mm512_slli_epi16(q[k], 4), m30)));
      store(out, c + 8,
            _mm512_or_si512(_mm512_and_si512(b[k], m4), _mm512_and_si512(_mm512_slli_epi16(q[k], 2), m30)));
      store(out, c + 16,
            _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(a[k], 4), m4), _mm512_and_si512(q[k], m30)));
      store(out, c + 24,
            _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(b[k], 4), m4),
                            _mm512_and_si512(_mm512_srli_epi16(q[k], 2), m30)));
    }
  }
  // d is read as the top half of the dword ending with it, which stays inside the block.
  const __m512 d = halves_to_float(_mm512_srli_epi32(src.dwords(offsetof(BlockQ6_K, d) - 2), 16));
  auto* s = reinterpret_cast<float*>(out + 256 * kLanes);
  for (int w = 0; w < 4; ++w) {
    const __m512i sc4 = src.dwords(offsetof(BlockQ6_K, scales) + 4 * w);
    for (int b = 0; b < 4; ++b) {
      const __m512i sc = _mm512_srai_epi32(_mm512_slli_epi32(sc4, 24 - 8 * b), 24);
      _mm512_storeu_ps(s + (4 * w + b) * kLanes, _mm512_mul_ps(_mm512_cvtepi32_ps(sc), d));
    }
  }
}

ONECARD_AVX512 void q8_0(const Unit& src, uint8_t* out) {
  __m512i q[8];
  src.t32(offsetof(BlockQ8_0, qs), q);
  // Signed levels + 128: the unsigned levels of the integer view.
  for (int k = 0; k < 8; ++k)
    store(out, k, _mm512_xor_si512(q[k], _mm512_set1_epi8(static_cast<char>(0x80))));
  _mm512_storeu_ps(reinterpret_cast<float*>(out + 32 * kLanes), halves_to_float(src.dwords(0)));
}

ONECARD_AVX512 bool interleave(gguf::GgmlType type, const Unit& src, uint8_t* out) {
  switch (type) {
    case gguf::GgmlType::Q4_K:
      q4_k(src, out);
      return true;
    case gguf::GgmlType::Q6_K:
      q6_k(src, out);
      return true;
    case gguf::GgmlType::Q8_0:
      q8_0(src, out);
      return true;
    default:
      return false;
  }
}

ONECARD_AVX512 Unit from_rows(const IntFormat& f, const uint8_t* row0, size_t row_bytes, int valid,
                              int64_t u) {
  Rows r{row0, row_bytes, valid, _mm512_setzero_si512()};
  // A group spans 16 rows of one matrix, far below 2 GiB: the offsets fit gather's 32-bit indices.
  alignas(64) int32_t offsets[kLanes];
  for (int i = 0; i < kLanes; ++i) offsets[i] = static_cast<int32_t>(r.row(i) - row0);
  r.offsets = _mm512_load_si512(offsets);
  return Unit{r, static_cast<size_t>(u) * f.unit_bytes};
}

// Any other format: each row unpacked by the table's unpacker (a vector one where there is one, AVX-512 or
// AVX2: the grid formats' scalar unpack took two thirds of a 512-token IQ2_XXS MoE), then the unpacked rows
// transposed the same way.
ONECARD_AVX512 void unpacked_rows(const IntFormat& f, const uint8_t* row0, size_t row_bytes, int valid,
                                  int64_t u, uint8_t* out) {
  static const PerType<UnpackFn>& unpackers = kernels(Isa::Avx512Vnni).unpack;
  const UnpackFn unpack = unpackers[f.type];
  alignas(64) UnpackedUnit rows[kLanes];
  for (int lane = 0; lane < kLanes; ++lane) {
    unpack(row0 + static_cast<size_t>(std::min(lane, valid - 1)) * row_bytes + u * f.unit_bytes, rows[lane]);
  }
  Rows r{reinterpret_cast<const uint8_t*>(rows), sizeof(UnpackedUnit), kLanes, _mm512_setzero_si512()};
  __m512i v[8];
  for (int off = 0; off < f.unit; off += 32) {
    transpose_32(r, static_cast<size_t>(off), v);
    for (int k = 0; k < 8; ++k) store(out, off / 4 + k, v[k]);
  }
  auto* s = reinterpret_cast<float*>(out + f.unit * kLanes);
  float* m = s + f.subs() * kLanes;
  if (f.subs() % 8 == 0) {
    for (int h = 0; h < f.subs() / 8; ++h) {
      transpose_32(r, offsetof(UnpackedUnit, s) + 32 * h, v);
      for (int k = 0; k < 8; ++k) _mm512_storeu_si512(s + (8 * h + k) * kLanes, v[k]);
      if (!f.affine) continue;
      transpose_32(r, offsetof(UnpackedUnit, m) + 32 * h, v);
      for (int k = 0; k < 8; ++k) _mm512_storeu_si512(m + (8 * h + k) * kLanes, v[k]);
    }
    return;
  }
  for (int lane = 0; lane < kLanes; ++lane) {
    for (int b = 0; b < f.subs(); ++b) {
      s[b * kLanes + lane] = rows[lane].s[b];
      if (f.affine) m[b * kLanes + lane] = rows[lane].m[b];
    }
  }
}

}  // namespace

ONECARD_AVX512 void interleave_unit(const IntFormat& f, const uint8_t* row0, size_t row_bytes, int valid,
                                    int64_t u, uint8_t* out) {
  const Unit src = from_rows(f, row0, row_bytes, valid, u);
  if (!interleave(f.type, src, out)) unpacked_rows(f, row0, row_bytes, valid, u, out);
}

}  // namespace onecard::cpu::gemm_detail
