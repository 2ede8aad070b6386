// Q2_K, Q4_K and Q6_K weights repacked at load for the AVX-512 VNNI kernels, so that neither prefill nor
// decode transposes rows while it multiplies. The bytes are the file's own, moved: a Q2_K or Q4_K matrix
// whose rows are a multiple of 16 takes exactly its size in the file, a Q6_K one 1% more (padding that keeps
// vectors aligned). The AVX2 table packs into the same bytes a layout of its own (x86/avx2/packed.h).
//
// Rows go in blocks of 32 (the last block may be shorter), and a block's data is one contiguous stream, unit
// (256 columns) after unit, which the hardware prefetcher follows and the next block continues. Within a
// unit, each panel of 16 rows of the block has a piece in which every field of the file's block is laid out
// as vectors of 16 dwords, dword r holding 4 bytes of row r:
//   Q4_K (2304 bytes): qs as 32 vectors (vector v: bytes 4v..4v+3; low nibbles are 4 columns of sub-block
//     2 * (v / 8), high nibbles the same columns of the next sub-block); d of the 16 rows (fp16) at 2048,
//     dmin at 2080; the 12 scale bytes as 3 vectors at 2112.
//   Q2_K (1344 bytes): qs as 16 vectors (vector 8n + 4h + k: bytes 32n + 16h + 4k.., whose bit pairs 2j are 4
//     columns of sub-block 8n + 2j + h); the 16 scale bytes as 4 vectors at 1024; d at 1280, dmin at 1312.
//   Q6_K (3392 bytes): ql as 32 vectors, qh as 16 at 2048, the 16 scales as 4 vectors at 3072, d at 3328,
//     then 32 bytes of padding.
// Rows past the end of the matrix are zero (their d is 0).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "cpu/matrix.h"
#include "cpu/x86/avx512/gemm.h"
#include "gguf/types.h"

namespace onecard::cpu {

inline constexpr int64_t kPackedBlockRows = kGemmBlockRows;
inline constexpr int64_t kPackedPanelRows = gemm_detail::kLanes;

// Whether pack_matrix handles the type, and the bytes of one panel's piece of a unit (0 if not).
size_t packed_piece_bytes(gguf::GgmlType type);
inline bool packable(gguf::GgmlType type) {
  return packed_piece_bytes(type) != 0;
}

// A view of one packed matrix (or of several one after another, as an expert tensor).
struct PackedMatrix {
  gguf::GgmlType type = gguf::GgmlType::F32;
  int64_t rows = 0, cols = 0;
  const uint8_t* data = nullptr;  // 64-byte aligned

  explicit operator bool() const { return data != nullptr; }
  size_t piece() const { return packed_piece_bytes(type); }
  int64_t units() const { return cols / 256; }
  int64_t blocks() const { return (rows + kPackedBlockRows - 1) / kPackedBlockRows; }
  // Panels in block b (2, or 1 for a last block of at most 16 rows).
  int panels(int64_t b) const { return rows - b * kPackedBlockRows > kPackedPanelRows ? 2 : 1; }
  size_t block_offset(int64_t b) const { return static_cast<size_t>(b * 2 * units()) * piece(); }
  const uint8_t* block(int64_t b) const { return data + block_offset(b); }
  size_t bytes() const { return static_cast<size_t>((rows + 15) / 16 * units()) * piece(); }
  PackedMatrix matrix(int64_t i) const {
    PackedMatrix r = *this;
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
// Empty (data null) when the memory cannot be had.
PackedBuffer allocate_packed(size_t bytes);

// Packs matrices [first, last) of the `count` matrices of w's shape and type lying one after another from
// w.data (an expert tensor) into out, which holds count * PackedMatrix{w.type, w.rows, w.cols}.bytes() bytes.
// w's rows are whole units (every Q2_K, Q4_K and Q6_K row is).
void pack_matrix(const Matrix& w, int64_t first, int64_t last, uint8_t* out);

// The file's block of row r, unit u, read back from the packed layout into out (the type's block size).
void packed_block(const PackedMatrix& p, int64_t r, int64_t u, uint8_t* out);

// y[t * ldy + i] = row 32 * b + i of p times token t, for the rows of block b and t < tokens.count; other
// entries of y are untouched. tokens are quantized for the type's integer format (Q8_K rows with their
// token_side). AVX-512 VNNI only (the AVX2 table has its own, for its own layout).
void gemm_packed(const PackedMatrix& p, int64_t b, GemmTokens tokens, float* y, int64_t ldy);

}  // namespace onecard::cpu
