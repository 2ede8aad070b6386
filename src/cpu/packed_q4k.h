// Q4_K weights repacked at load for the AVX-512 VNNI kernels, so that neither prefill nor decode transposes
// rows while it multiplies. The bytes are the file's own, moved: 4-bit levels, fp16 d and dmin, 12 bytes of
// 6-bit scales per block, so a matrix whose rows are a multiple of 16 takes exactly its size in the file.
//
// Rows go in blocks of 32 (the last block may be shorter), and a block's data is one contiguous stream, unit
// (256 columns) after unit, which the hardware prefetcher follows and the next block continues. Within a
// unit, each panel of 16 rows of the block has a 2304-byte piece:
//   bytes    0-2047  32 vectors [j * 8 + k][16 rows][4 bytes]: bytes 32j+4k .. 32j+4k+3 of each row's qs. Low
//                    nibbles are columns 64j+4k.., high nibbles columns 64j+32+4k.. (sub-blocks 2j and 2j+1),
//                    so one 64-byte load gives 4 columns of 16 rows for two sub-blocks;
//   bytes 2048-2079  d of the 16 rows (fp16), 2080-2111 dmin;
//   bytes 2112-2303  the 12 scale bytes of the 16 rows as three vectors of 16 dwords.
// Rows past the end of the matrix are zero (their d is 0).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "cpu/gemm.h"
#include "cpu/matrix.h"
#include "quant/blocks.h"

namespace onecard::cpu {

inline constexpr int64_t kPackedBlockRows = 32;
inline constexpr int64_t kPackedPanelRows = 16;
inline constexpr size_t kPackedPieceBytes = 2304;

// A view of one packed Q4_K matrix (or of `count` of them one after another, as an expert tensor).
struct PackedQ4K {
  int64_t rows = 0, cols = 0;
  const uint8_t* data = nullptr;  // 64-byte aligned

  explicit operator bool() const { return data != nullptr; }
  int64_t units() const { return cols / quant::kQK_K; }
  int64_t blocks() const { return (rows + kPackedBlockRows - 1) / kPackedBlockRows; }
  // Panels in block b (2, or 1 for a last block of at most 16 rows).
  int panels(int64_t b) const { return rows - b * kPackedBlockRows > kPackedPanelRows ? 2 : 1; }
  size_t block_offset(int64_t b) const { return static_cast<size_t>(b * 2 * units()) * kPackedPieceBytes; }
  const uint8_t* block(int64_t b) const { return data + block_offset(b); }
  size_t bytes() const { return static_cast<size_t>(((rows + 15) / 16) * units()) * kPackedPieceBytes; }
  PackedQ4K matrix(int64_t i) const {
    PackedQ4K r = *this;
    r.data += static_cast<size_t>(i) * bytes();
    return r;
  }
};

// Memory for packed matrices: 64-byte aligned, on huge pages where the kernel grants them.
struct PackedBuffer {
  struct Free {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t, Free> data;
  size_t bytes = 0;
};
PackedBuffer allocate_packed(size_t bytes);

// Packs `count` Q4_K matrices of w's shape lying one after another from w.data (an expert tensor) into out,
// which holds count * PackedQ4K{w.rows, w.cols}.bytes() bytes. Matrices [first, last) only, so that callers
// can split the work.
void pack_q4k(const Matrix& w, int64_t first, int64_t last, uint8_t* out);

// The file's block of row r, unit u, read back from the packed layout.
quant::BlockQ4_K packed_q4k_block(const PackedQ4K& p, int64_t r, int64_t u);

// y[t * ldy + i] = row 32 * b + i of p times token t, for the rows of block b and t < tokens.count; other
// entries of y are untouched. tokens are quantized for Q4_K's integer format (Q8_K rows with their
// token_side). AVX-512 VNNI only.
void gemm_q4k_packed(const PackedQ4K& p, int64_t b, GemmTokens tokens, float* y, int64_t ldy);

}  // namespace onecard::cpu
