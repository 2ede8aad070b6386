// The batched int8 product for AVX-512 VNNI (prefill, and the experts of a MoE batch). Weight rows lie in the
// 16 int32 lanes of a register: one weight block (unit) of 16 rows at a time is interleaved so that each
// 64-byte vector holds 4 consecutive columns of 16 rows, as unsigned levels. A token's 4 activation bytes are
// broadcast as the signed operand, so one vpdpbusd advances 16 rows of one token by 4 columns. Every lane
// works whatever the number of tokens, a weight vector loaded once serves several tokens, and the broadcasts
// come straight from the quantized activation rows.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cpu/gemm.h"
#include "cpu/int_format.h"
#include "cpu/matrix.h"

namespace onecard::cpu {

// Rows the AVX-512 batched kernels compute at once: two groups of 16, one per int32 lane of a register. The
// kernel table hands this to callers as the GEMM's block_rows; the packed layout (packed.h) is built on it.
inline constexpr int64_t kGemmBlockRows = 32;

// y[t * ldy + i] = row r0 + i of w times token t, for i < nr and t < tokens.count (AVX-512 VNNI only). Other
// entries of y are not touched. While it computes, the kernel asks for the prefetch_bytes at `prefetch` (the
// weights its thread multiplies next), so that memory streams under the arithmetic.
void gemm_int(const IntFormat& f, const Matrix& w, int64_t r0, int64_t nr, GemmTokens tokens, float* y,
              int64_t ldy, const uint8_t* prefetch = nullptr, size_t prefetch_bytes = 0);

namespace gemm_detail {

inline constexpr int kLanes = kGemmBlockRows / 2;  // rows per interleaved group

// One unit of one group: levels [unit / 4][16 rows][4 bytes], then scales s [subs][16] and, for affine
// formats, offsets m [subs][16] as floats. Q4_K has its integer mins instead (the kernel adds them in
// integers): those of sub-blocks 2i and 2i + 1 as the 16-bit halves of int32 [i][16] for i < 4, then -dmin
// [16] as floats (in the first 320 of those 512 bytes).
inline size_t group_unit_bytes(const IntFormat& f) {
  return static_cast<size_t>(f.unit) * kLanes +
         static_cast<size_t>(f.subs()) * kLanes * 4 * (f.affine ? 2 : 1);
}

// Unit u of the 16 rows starting at row0, row_bytes apart, interleaved into out, for any integer format:
// Q4_K, Q6_K and Q8_0 from their bytes directly, the others unpacked row by row, then transposed. Only the
// first `valid` rows exist; the lanes beyond repeat the last of them.
void interleave_unit(const IntFormat& f, const uint8_t* row0, size_t row_bytes, int valid, int64_t u,
                     uint8_t* out);

// This thread's buffer for the sums of one 32-row block times `count` tokens, 2 * kLanes floats per token,
// 64-byte aligned. Sums accumulate there per unit: y's rows may lie a multiple of 4 KiB apart, where
// re-reading them every unit would keep missing the cache.
float* block_sums(int64_t count);
// Rows [0, rows) of each token's sums, 2 * kLanes apart in acc (block_sums), to y (AVX-512).
void store_rows(const float* acc, int64_t count, int64_t rows, float* y, int64_t ldy);

}  // namespace gemm_detail
}  // namespace onecard::cpu
