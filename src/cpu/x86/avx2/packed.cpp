// Packing Q2_K, Q4_K and Q6_K rows for the AVX2 kernel (x86/avx2/packed.h) and multiplying them.
#include "cpu/x86/avx2/packed.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <vector>

#include "cpu/int_format.h"
#include "cpu/x86/avx2/gemm.h"

namespace onecard::cpu::avx2 {
namespace {

// Bytes of one row's unit in the layout, and of one group's.
size_t row_unit_bytes(gguf::GgmlType type) {
  return packed_piece_bytes(type) / kPackedPanelRows;
}
size_t group_bytes(gguf::GgmlType type) {
  return row_unit_bytes(type) * kLanes;
}

// Block b of a packed matrix, its units read as they lie.
class PackedRows final : public UnitSource {
 public:
  PackedRows(const IntFormat& f, const PackedMatrix& p, int64_t b)
      : f_(f),
        block_(p.block(b)),
        after_(p.data + std::min(p.block_offset(b + 1), p.bytes())),
        units_(p.units()),
        group_(group_bytes(p.type)) {}

  void interleave(int64_t blk, int g, int, int64_t u, uint8_t* out) const override {
    interleave_packed_unit(f_, block_ + offset(blk, u) + static_cast<size_t>(g) * group_, out);
  }
  // A span's units of both groups lie together. The hardware prefetcher does not run far enough ahead of
  // reads this bursty (a span, then many passes over it): without these lines the expansion waited on
  // memory for a fifth of the MoE's time (Zen 4, 16 tokens per expert).
  int lines(int64_t blk, int64_t, int64_t u, int64_t span, Lines* out) const override {
    out[0] = lines_of(block_ + offset(blk, u), units_bytes(span));
    return 1;
  }
  // The next block, the next matrix's first after a matrix's last: the MoE's tasks run through a matrix's
  // blocks in order, so this is usually the block of this thread's next task (gate and up, called in turn
  // for one task, each reach theirs a call later).
  int lines_after(int64_t span, Lines* out) const override {
    out[0] = lines_of(after_, units_bytes(span));
    return 1;
  }

 private:
  // Bytes of n units of a block's two groups, which lie together.
  size_t units_bytes(int64_t n) const { return static_cast<size_t>(n * kGemmBlockRows / kLanes) * group_; }
  size_t offset(int64_t blk, int64_t u) const { return units_bytes(blk * units_ + u); }

  const IntFormat& f_;
  const uint8_t* block_;
  const uint8_t* after_;
  int64_t units_;
  size_t group_;
};

}  // namespace

void pack_matrix(const Matrix& w, int64_t first, int64_t last, uint8_t* out) {
  static_assert(kPackedPanelRows == kGemmBlockRows && kPackedBlockRows % kGemmBlockRows == 0);
  const PackedMatrix shape{w.type, w.rows, w.cols, nullptr};
  const size_t block = gguf::traits(w.type).type_size, row_unit = row_unit_bytes(w.type);
  assert(static_cast<size_t>(shape.units()) * block == w.row_bytes && block <= row_unit);
  const int64_t panels = (w.rows + kGemmBlockRows - 1) / kGemmBlockRows;
  std::vector<uint8_t> padded(row_unit);
  for (int64_t m = first; m < last; ++m) {
    const uint8_t* src = w.data + static_cast<size_t>(m) * w.bytes();
    uint8_t* dst = out + static_cast<size_t>(m) * shape.bytes();
    for (int64_t q = 0; q < panels; ++q) {
      for (int64_t u = 0; u < shape.units(); ++u) {
        for (int64_t r = 0; r < kGemmBlockRows; ++r) {
          const int64_t row = q * kGemmBlockRows + r;
          std::fill(padded.begin(), padded.end(), uint8_t{0});
          if (row < w.rows) std::memcpy(padded.data(), src + row * w.row_bytes + u * block, block);
          uint8_t* group = dst + ((q * shape.units() + u) * kGemmBlockRows + r / kLanes * kLanes) * row_unit;
          for (size_t v = 0; v < row_unit / 4; ++v)
            std::memcpy(group + (v * kLanes + static_cast<size_t>(r % kLanes)) * 4, padded.data() + 4 * v, 4);
        }
      }
    }
  }
}

namespace {

void gemm_block(DotInsn dot, const PackedMatrix& p, int64_t b, GemmTokens tokens, float* y, int64_t ldy) {
  const IntFormat& f = *int_format(p.type);
  const int64_t rows = std::min(kPackedBlockRows, p.rows - b * kPackedBlockRows);
  gemm_source(dot, f, PackedRows(f, p, b), rows, p.cols, tokens, y, ldy, nullptr, 0);
}

}  // namespace

void gemm_packed(const PackedMatrix& p, int64_t b, GemmTokens tokens, float* y, int64_t ldy) {
  gemm_block(DotInsn::Maddubs, p, b, tokens, y, ldy);
}

void gemm_packed_vnni(const PackedMatrix& p, int64_t b, GemmTokens tokens, float* y, int64_t ldy) {
  gemm_block(DotInsn::Vnni, p, b, tokens, y, ldy);
}

}  // namespace onecard::cpu::avx2
