// AVX2 interleaving for the batched kernel. Q2_K, Q3_K, Q4_K, Q6_K and Q8_0 are transposed as the raw bytes
// of the file (the bit operations that extract levels act on every byte alike, so they work as well after the
// transpose), with each row's scales fetched into its lane by gathers and decoded in vectors (Q3_K's, packed
// across bytes, row by row); the K formats among them keep their scales as integers (gemm.h). Any other
// format has each of its 8 rows unpacked into the integer view by the table's unpacker (a vector one where
// there is one), and the unpacked rows transposed the same way. Q2_K, Q4_K and Q6_K units repacked at load
// (x86/avx2/packed.h) are already transposed: the same code reads their vectors as they lie.
#include <algorithm>

#include "base/half.h"
#include "cpu/x86.h"
#include "cpu/x86/avx2/gemm.h"
#include "quant/blocks.h"

namespace onecard::cpu::avx2 {
namespace {

using quant::BlockQ2_K;
using quant::BlockQ3_K;
using quant::BlockQ4_K;
using quant::BlockQ6_K;
using quant::BlockQ8_0;

// r[i] = 32 bytes of row i, transposed by dwords: out[k] holds bytes 4k..4k+3 of row i in lane i.
ONECARD_AVX2 void transpose(const __m256i r[8], __m256i out[8]) {
  __m256i t[8], s[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    s[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
    s[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
    s[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
    s[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // s[j] (rows 0-3) and s[j + 4] (rows 4-7) hold dword j in their low 128 bits and dword j + 4 in the high.
  for (int j = 0; j < 4; ++j) {
    out[j] = _mm256_permute2x128_si256(s[j], s[j + 4], 0x20);
    out[j + 4] = _mm256_permute2x128_si256(s[j], s[j + 4], 0x31);
  }
}

ONECARD_AVX2 void store(uint8_t* out, int chunk, __m256i v) {
  _mm256_store_si256(reinterpret_cast<__m256i*>(out + 32 * chunk), v);
}

// The 8 rows of a group, clamped to the valid ones.
struct Rows {
  const uint8_t* row0;
  size_t row_bytes;
  int valid;

  const uint8_t* row(int lane) const {
    return row0 + static_cast<size_t>(std::min(lane, valid - 1)) * row_bytes;
  }
};

// 32 bytes at `offset` of each row, transposed.
ONECARD_AVX2 void t32(const Rows& r, size_t offset, __m256i out[8]) {
  __m256i v[8];
  for (int i = 0; i < 8; ++i) v[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r.row(i) + offset));
  transpose(v, out);
}

// One unit of the 8 rows; offsets are within the unit's block.
struct Unit {
  Rows rows;
  size_t base;      // the unit's offset in each row
  __m256i offsets;  // of each lane's row from row0, for gathers

  ONECARD_AVX2 void transposed(size_t offset, __m256i out[8]) const { t32(rows, base + offset, out); }
  // The dword at `offset` of every row, one per lane.
  ONECARD_AVX2 __m256i dwords(size_t offset) const {
    return _mm256_i32gather_epi32(reinterpret_cast<const int*>(rows.row0 + base + offset), offsets, 1);
  }
};

// One unit of 8 rows already transposed by dwords (packed.h): what Unit computes is loaded as it lies.
struct PackedUnit {
  const uint8_t* at;  // 32-byte aligned

  ONECARD_AVX2 __m256i vector(size_t v) const {
    return _mm256_load_si256(reinterpret_cast<const __m256i*>(at) + v);
  }
  ONECARD_AVX2 void transposed(size_t offset, __m256i out[8]) const {
    for (size_t k = 0; k < 8; ++k) out[k] = vector(offset / 4 + k);
  }
  ONECARD_AVX2 __m256i dwords(size_t offset) const {
    const auto shift = static_cast<int>(8 * (offset % 4));
    if (shift == 0) return vector(offset / 4);
    return _mm256_or_si256(_mm256_srlv_epi32(vector(offset / 4), _mm256_set1_epi32(shift)),
                           _mm256_sllv_epi32(vector(offset / 4 + 1), _mm256_set1_epi32(32 - shift)));
  }
};

// The low halves of the 8 lanes as floats.
ONECARD_AVX2 __m256 halves_to_float(__m256i v) {
  const __m256i low = _mm256_and_si256(v, _mm256_set1_epi32(0xffff));
  const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(low, low), 0x08);
  return _mm256_cvtph_ps(_mm256_castsi256_si128(packed));
}

// The integer-scale tail of a unit (gemm.h), after its levels.
struct IntScales {
  uint8_t* at;
  int subs;

  // lo's and hi's low 16 bits as the low and high half of each lane.
  static ONECARD_AVX2 __m256i pair(__m256i lo, __m256i hi) {
    return _mm256_or_si256(_mm256_and_si256(lo, _mm256_set1_epi32(0xffff)), _mm256_slli_epi32(hi, 16));
  }
  ONECARD_AVX2 void put(int slot, __m256i v) const { store(at, slot, v); }

  ONECARD_AVX2 void scale(int b, __m256i v) const { put(b, pair(v, v)); }
  ONECARD_AVX2 void d(__m256 v) const { put(subs, _mm256_castps_si256(v)); }
  ONECARD_AVX2 void offsets(int j, __m256i even, __m256i odd) const { put(subs + 1 + j, pair(even, odd)); }
  ONECARD_AVX2 void dmin(__m256 v) const { put(subs + 1 + subs / 2, _mm256_castps_si256(v)); }
  // The levels of a non-affine format are biased by z: each sub-block's sum of products carries z times its
  // activation sum too much, z * scale times the activation sum that the offsets remove.
  ONECARD_AVX2 void zero_offsets(int z, const __m256i* sc) const {
    const __m256i neg_z = _mm256_set1_epi32(-z);
    for (int j = 0; j < subs / 2; ++j)
      offsets(j, _mm256_mullo_epi32(sc[2 * j], neg_z), _mm256_mullo_epi32(sc[2 * j + 1], neg_z));
  }
};

template <class Src>
ONECARD_AVX2 void q4_k(const Src& src, uint8_t* out) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  for (int j = 0; j < 4; ++j) {
    __m256i q[8];
    src.transposed(offsetof(BlockQ4_K, qs) + 32 * j, q);
    for (int k = 0; k < 8; ++k) {
      store(out, 16 * j + k, _mm256_and_si256(q[k], m4));
      store(out, 16 * j + 8 + k, _mm256_and_si256(_mm256_srli_epi16(q[k], 4), m4));
    }
  }
  // The 6-bit scales and mins of the 8 sub-blocks, from the 3 dwords that hold them.
  const __m256i dd = src.dwords(0);
  const __m256i u0 = src.dwords(4), u1 = src.dwords(8), u2 = src.dwords(12);
  const __m256i m6 = _mm256_set1_epi32(63), m2 = _mm256_set1_epi32(3), low4 = _mm256_set1_epi32(15);
  __m256i sc[8], mn[8];
  for (int b = 0; b < 4; ++b) {
    sc[b] = _mm256_and_si256(_mm256_srli_epi32(u0, 8 * b), m6);
    mn[b] = _mm256_and_si256(_mm256_srli_epi32(u1, 8 * b), m6);
    sc[b + 4] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(u2, 8 * b), low4),
                                _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(u0, 8 * b + 6), m2), 4));
    mn[b + 4] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(u2, 8 * b + 4), low4),
                                _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(u1, 8 * b + 6), m2), 4));
  }
  const IntScales out_scales{out + 256 * kLanes, 8};
  for (int b = 0; b < 8; ++b) out_scales.scale(b, sc[b]);
  for (int j = 0; j < 4; ++j) out_scales.offsets(j, mn[2 * j], mn[2 * j + 1]);
  out_scales.d(halves_to_float(dd));
  out_scales.dmin(_mm256_sub_ps(_mm256_setzero_ps(), halves_to_float(_mm256_srli_epi32(dd, 16))));
}

template <class Src>
ONECARD_AVX2 void q6_k(const Src& src, uint8_t* out) {
  const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
  for (int h = 0; h < 2; ++h) {
    // Columns 128h + l, + 32, + 64, + 96 (l < 32) take the low and high nibbles of ql[64h + l] and
    // ql[64h + 32 + l], and bit pairs 0-1, 2-3, 4-5, 6-7 of qh[32h + l].
    __m256i a[8], b[8], q[8];
    src.transposed(offsetof(BlockQ6_K, ql) + 64 * h, a);
    src.transposed(offsetof(BlockQ6_K, ql) + 64 * h + 32, b);
    src.transposed(offsetof(BlockQ6_K, qh) + 32 * h, q);
    for (int k = 0; k < 8; ++k) {
      const int c = 32 * h + k;
      store(out, c,
            _mm256_or_si256(_mm256_and_si256(a[k], m4), _mm256_and_si256(_mm256_slli_epi16(q[k], 4), m30)));
      store(out, c + 8,
            _mm256_or_si256(_mm256_and_si256(b[k], m4), _mm256_and_si256(_mm256_slli_epi16(q[k], 2), m30)));
      store(out, c + 16,
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a[k], 4), m4), _mm256_and_si256(q[k], m30)));
      store(out, c + 24,
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b[k], 4), m4),
                            _mm256_and_si256(_mm256_srli_epi16(q[k], 2), m30)));
    }
  }
  // d is read as the top half of the dword ending with it, which stays inside the block.
  const IntScales out_scales{out + 256 * kLanes, 16};
  out_scales.d(halves_to_float(_mm256_srli_epi32(src.dwords(offsetof(BlockQ6_K, d) - 2), 16)));
  __m256i sc[16];
  for (int w = 0; w < 4; ++w) {
    const __m256i sc4 = src.dwords(offsetof(BlockQ6_K, scales) + 4 * w);
    for (int b = 0; b < 4; ++b) sc[4 * w + b] = _mm256_srai_epi32(_mm256_slli_epi32(sc4, 24 - 8 * b), 24);
  }
  for (int b = 0; b < 16; ++b) out_scales.scale(b, sc[b]);
  out_scales.zero_offsets(32, sc);
}

// Element 128n + 32j + l of a Q2_K or Q3_K block is bit pair j of qs[32n + l]: chunk 32n + 8j + k holds
// columns 4k.. of that run, from transposed vector k of qs[32n ..].
template <class Src>
ONECARD_AVX2 void two_bit_levels(const Src& src, size_t qs, uint8_t* out) {
  const __m256i m2 = _mm256_set1_epi8(3);
  for (int n = 0; n < 2; ++n) {
    __m256i q[8];
    src.transposed(qs + 32 * n, q);
    for (int j = 0; j < 4; ++j) {
      for (int k = 0; k < 8; ++k)
        store(out, 32 * n + 8 * j + k, _mm256_and_si256(_mm256_srli_epi16(q[k], 2 * j), m2));
    }
  }
}

template <class Src>
ONECARD_AVX2 void q2_k(const Src& src, uint8_t* out) {
  two_bit_levels(src, offsetof(BlockQ2_K, qs), out);
  // Scales (low nibble) and mins (high nibble) of the 16 sub-blocks, four per gathered dword.
  const __m256i dd = src.dwords(offsetof(BlockQ2_K, d));
  const __m256i low4 = _mm256_set1_epi32(15);
  const IntScales out_scales{out + 256 * kLanes, 16};
  __m256i mn[16];
  for (int w = 0; w < 4; ++w) {
    const __m256i sc4 = src.dwords(offsetof(BlockQ2_K, scales) + 4 * w);
    for (int b = 0; b < 4; ++b) {
      out_scales.scale(4 * w + b, _mm256_and_si256(_mm256_srli_epi32(sc4, 8 * b), low4));
      mn[4 * w + b] = _mm256_and_si256(_mm256_srli_epi32(sc4, 8 * b + 4), low4);
    }
  }
  for (int j = 0; j < 8; ++j) out_scales.offsets(j, mn[2 * j], mn[2 * j + 1]);
  out_scales.d(halves_to_float(dd));
  out_scales.dmin(_mm256_sub_ps(_mm256_setzero_ps(), halves_to_float(_mm256_srli_epi32(dd, 16))));
}

ONECARD_AVX2 void q3_k(const Unit& src, uint8_t* out) {
  two_bit_levels(src, offsetof(BlockQ3_K, qs), out);
  // The third bit of element 128n + 32j + l is bit 4n + j of hmask[l].
  __m256i h[8];
  src.transposed(offsetof(BlockQ3_K, hmask), h);
  const __m256i one = _mm256_set1_epi8(1);
  for (int n = 0; n < 2; ++n) {
    for (int j = 0; j < 4; ++j) {
      for (int k = 0; k < 8; ++k) {
        const __m256i bit = _mm256_and_si256(_mm256_srli_epi16(h[k], 4 * n + j), one);
        uint8_t* at = out + 32 * (32 * n + 8 * j + k);
        const __m256i low = _mm256_load_si256(reinterpret_cast<const __m256i*>(at));
        _mm256_store_si256(reinterpret_cast<__m256i*>(at), _mm256_or_si256(low, _mm256_slli_epi16(bit, 2)));
      }
    }
  }
  // The 6-bit scales are packed across the 12 bytes: decoded per row.
  alignas(32) int32_t scales[16][kLanes];
  alignas(32) float d[kLanes];
  for (int lane = 0; lane < kLanes; ++lane) {
    const auto* b = reinterpret_cast<const BlockQ3_K*>(src.rows.row(lane) + src.base);
    d[lane] = fp16_to_fp32(b->d);
    for (int k = 0; k < 16; ++k) scales[k][lane] = quant::q3k_scale(k, b->scales) - 32;
  }
  const IntScales out_scales{out + 256 * kLanes, 16};
  __m256i sc[16];
  for (int k = 0; k < 16; ++k) {
    sc[k] = _mm256_load_si256(reinterpret_cast<const __m256i*>(scales[k]));
    out_scales.scale(k, sc[k]);
  }
  out_scales.d(_mm256_load_ps(d));
  out_scales.zero_offsets(4, sc);
}

ONECARD_AVX2 void q8_0(const Unit& src, uint8_t* out) {
  __m256i q[8];
  src.transposed(offsetof(BlockQ8_0, qs), q);
  // Signed levels + 128: the unsigned levels of the integer view.
  for (int k = 0; k < 8; ++k)
    store(out, k, _mm256_xor_si256(q[k], _mm256_set1_epi8(static_cast<char>(0x80))));
  _mm256_store_ps(reinterpret_cast<float*>(out + 32 * kLanes), halves_to_float(src.dwords(0)));
}

// Any other format: each row unpacked, then the unpacked rows transposed.
ONECARD_AVX2 void unpacked_rows(const IntFormat& f, UnpackFn unpack, const Rows& r, int64_t u, uint8_t* out) {
  alignas(32) UnpackedUnit rows[kLanes];
  for (int lane = 0; lane < kLanes; ++lane) unpack(r.row(lane) + u * f.unit_bytes, rows[lane]);
  const Rows unpacked{reinterpret_cast<const uint8_t*>(rows), sizeof(UnpackedUnit), kLanes};
  __m256i v[8];
  for (int off = 0; off < f.unit; off += 32) {
    t32(unpacked, static_cast<size_t>(off), v);
    for (int k = 0; k < 8; ++k) store(out, off / 4 + k, v[k]);
  }
  auto* s = reinterpret_cast<float*>(out + f.unit * kLanes);
  float* m = s + f.subs() * kLanes;
  if (f.subs() % 8 != 0) {
    for (int lane = 0; lane < kLanes; ++lane) {
      for (int b = 0; b < f.subs(); ++b) {
        s[b * kLanes + lane] = rows[lane].s[b];
        if (f.affine) m[b * kLanes + lane] = rows[lane].m[b];
      }
    }
    return;
  }
  for (int h = 0; h < f.subs() / 8; ++h) {
    t32(unpacked, offsetof(UnpackedUnit, s) + 32 * h, v);
    for (int k = 0; k < 8; ++k) _mm256_store_ps(s + (8 * h + k) * kLanes, _mm256_castsi256_ps(v[k]));
    if (!f.affine) continue;
    t32(unpacked, offsetof(UnpackedUnit, m) + 32 * h, v);
    for (int k = 0; k < 8; ++k) _mm256_store_ps(m + (8 * h + k) * kLanes, _mm256_castsi256_ps(v[k]));
  }
}

}  // namespace

bool int_scales(const IntFormat& f) {
  const auto t = f.type;
  return t == gguf::GgmlType::Q2_K || t == gguf::GgmlType::Q3_K || t == gguf::GgmlType::Q4_K ||
         t == gguf::GgmlType::Q6_K;
}

int max_level(const IntFormat& f) {
  if (!f.affine) return f.zero == 0 ? 255 : 2 * f.zero - 1;  // levels are biased around z
  switch (f.type) {
    case gguf::GgmlType::Q2_K:
      return 3;
    case gguf::GgmlType::Q4_1:
    case gguf::GgmlType::Q4_K:
      return 15;
    default:  // Q5_1, Q5_K
      return 31;
  }
}

namespace {

// The unit in the integer view's layout (levels once, unsigned).
ONECARD_AVX2 void interleave_view(const IntFormat& f, UnpackFn unpack, const Rows& r, int64_t u,
                                  uint8_t* out) {
  const auto type = f.type;
  if (type != gguf::GgmlType::Q2_K && type != gguf::GgmlType::Q3_K && type != gguf::GgmlType::Q4_K &&
      type != gguf::GgmlType::Q6_K && type != gguf::GgmlType::Q8_0) {
    unpacked_rows(f, unpack, r, u, out);
    return;
  }
  // A group spans 8 rows of one matrix, far below 2 GiB: the offsets fit gather's 32-bit indices.
  alignas(32) int32_t offsets[kLanes];
  for (int i = 0; i < kLanes; ++i) offsets[i] = static_cast<int32_t>(r.row(i) - r.row0);
  const Unit src{r, static_cast<size_t>(u) * f.unit_bytes,
                 _mm256_load_si256(reinterpret_cast<const __m256i*>(offsets))};
  if (type == gguf::GgmlType::Q2_K) q2_k(src, out);
  if (type == gguf::GgmlType::Q3_K) q3_k(src, out);
  if (type == gguf::GgmlType::Q4_K) q4_k(src, out);
  if (type == gguf::GgmlType::Q6_K) q6_k(src, out);
  if (type == gguf::GgmlType::Q8_0) q8_0(src, out);
}

// The levels of a view biased by 128 as the two operands of the sign trick, |w| then w for each 4 columns,
// followed by the view's scales.
ONECARD_AVX2 void split_signs(const IntFormat& f, const uint8_t* view, uint8_t* out) {
  const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80));
  for (int k = 0; k < f.unit / 4; ++k) {
    const __m256i w =
        _mm256_xor_si256(_mm256_load_si256(reinterpret_cast<const __m256i*>(view + 32 * k)), bias);
    store(out, 2 * k, _mm256_abs_epi8(w));
    store(out, 2 * k + 1, w);
  }
  const size_t levels = static_cast<size_t>(f.unit) * kLanes;
  std::copy(view + levels, view + levels + static_cast<size_t>(f.subs()) * kLanes * 4, out + 2 * levels);
}

}  // namespace

ONECARD_AVX2 void interleave_packed_unit(const IntFormat& f, const uint8_t* in, uint8_t* out) {
  const PackedUnit src{in};
  if (f.type == gguf::GgmlType::Q2_K) q2_k(src, out);
  if (f.type == gguf::GgmlType::Q4_K) q4_k(src, out);
  if (f.type == gguf::GgmlType::Q6_K) q6_k(src, out);
}

ONECARD_AVX2 void interleave_unit(const IntFormat& f, UnpackFn unpack, const uint8_t* row0, size_t row_bytes,
                                  int valid, int64_t u, uint8_t* out) {
  const Rows r{row0, row_bytes, valid};
  if (f.zero != 128) {
    interleave_view(f, unpack, r, u, out);
    return;
  }
  alignas(32) uint8_t view[kMaxUnit * kLanes + kMaxSubBlocks * kLanes * 4];
  interleave_view(f, unpack, r, u, view);
  split_signs(f, view, out);
}

}  // namespace onecard::cpu::avx2
