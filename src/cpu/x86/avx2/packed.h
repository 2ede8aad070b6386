// Q2_K, Q4_K and Q6_K experts repacked at load for the AVX2 batched kernel (the kernel table's packed entry).
// The layout takes the bytes packed.h reserves for a PackedMatrix: rows in blocks of kPackedBlockRows, each
// one contiguous stream of panels of 16 rows (one AVX2 block), a panel unit after unit, a unit group (8 rows)
// after group. A group's unit is the file's block of its 8 rows transposed by dwords, vector v holding dword
// v of row r in lane r, the block zero-padded to packed_piece_bytes / 16 bytes; rows past the end are zero.
// What the kernel still does per call is to expand these into its interleaved layout (gemm.h), which is twice
// the file's size for Q4_K and four times for Q2_K, too large to keep: the transposes and gathers that cost
// the most in interleave_unit are done once here, and the units stream from one place.
#pragma once

#include <cstdint>

#include "cpu/gemm.h"
#include "cpu/matrix.h"
#include "cpu/packed.h"

namespace onecard::cpu::avx2 {

// pack_matrix's contract (packed.h), in this layout.
void pack_matrix(const Matrix& w, int64_t first, int64_t last, uint8_t* out);

// gemm_packed's contract (packed.h), on this layout: by vpmaddubsw, and by vpdpbusd (needs AVX-VNNI).
void gemm_packed(const PackedMatrix& p, int64_t b, GemmTokens tokens, float* y, int64_t ldy);
void gemm_packed_vnni(const PackedMatrix& p, int64_t b, GemmTokens tokens, float* y, int64_t ldy);

}  // namespace onecard::cpu::avx2
