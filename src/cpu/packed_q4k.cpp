// Moving Q4_K rows into the packed layout (packed_q4k.h) and back, and the memory that holds them.
#include "cpu/packed_q4k.h"

#include <sys/mman.h>

#include <cassert>
#include <cstdlib>
#include <cstring>
#include <new>

namespace onecard::cpu {
namespace {

constexpr size_t kD = 2048, kDmin = 2080, kScales = 2112;

// The piece of panel g of block b, unit u.
size_t piece_offset(const PackedQ4K& p, int64_t b, int g, int64_t u) {
  return p.block_offset(b) + static_cast<size_t>(u * p.panels(b) + g) * kPackedPieceBytes;
}

}  // namespace

void PackedBuffer::Free::operator()(uint8_t* p) const {
  std::free(p);
}

PackedBuffer allocate_packed(size_t bytes) {
  // 2 MiB alignment lets transparent huge pages back the whole range: the experts are read from random
  // places and each 4 KiB page would otherwise cost a TLB miss.
  constexpr size_t kAlign = size_t{2} << 20;
  const size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
  auto* p = static_cast<uint8_t*>(std::aligned_alloc(kAlign, rounded == 0 ? kAlign : rounded));
  if (p == nullptr) throw std::bad_alloc();
  madvise(p, rounded, MADV_HUGEPAGE);
  PackedBuffer out;
  out.data.reset(p);
  out.bytes = bytes;
  return out;
}

void pack_q4k(const Matrix& w, int64_t first, int64_t last, uint8_t* out) {
  assert(w.type == gguf::GgmlType::Q4_K);
  const PackedQ4K shape{w.rows, w.cols, nullptr};
  const int64_t units = shape.units();
  for (int64_t m = first; m < last; ++m) {
    const uint8_t* src = w.data + static_cast<size_t>(m) * w.bytes();
    uint8_t* dst = out + static_cast<size_t>(m) * shape.bytes();
    for (int64_t b = 0; b < shape.blocks(); ++b) {
      for (int64_t u = 0; u < units; ++u) {
        for (int g = 0; g < shape.panels(b); ++g) {
          uint8_t* piece = dst + piece_offset(shape, b, g, u);
          std::memset(piece, 0, kPackedPieceBytes);
          for (int r = 0; r < kPackedPanelRows; ++r) {
            const int64_t row = b * kPackedBlockRows + g * kPackedPanelRows + r;
            if (row >= w.rows) break;
            quant::BlockQ4_K blk;
            std::memcpy(&blk, src + static_cast<size_t>(row) * w.row_bytes + u * sizeof(blk), sizeof(blk));
            for (int v = 0; v < 32; ++v) std::memcpy(piece + v * 64 + r * 4, blk.qs + 4 * v, 4);
            std::memcpy(piece + kD + 2 * r, &blk.d, 2);
            std::memcpy(piece + kDmin + 2 * r, &blk.dmin, 2);
            for (int v = 0; v < 3; ++v) std::memcpy(piece + kScales + v * 64 + r * 4, blk.scales + 4 * v, 4);
          }
        }
      }
    }
  }
}

quant::BlockQ4_K packed_q4k_block(const PackedQ4K& p, int64_t r, int64_t u) {
  const int64_t b = r / kPackedBlockRows;
  const int g = static_cast<int>(r % kPackedBlockRows / kPackedPanelRows);
  const auto lane = static_cast<int>(r % kPackedPanelRows);
  const uint8_t* piece = p.data + piece_offset(p, b, g, u);
  quant::BlockQ4_K blk;
  for (int v = 0; v < 32; ++v) std::memcpy(blk.qs + 4 * v, piece + v * 64 + lane * 4, 4);
  std::memcpy(&blk.d, piece + kD + 2 * lane, 2);
  std::memcpy(&blk.dmin, piece + kDmin + 2 * lane, 2);
  for (int v = 0; v < 3; ++v) std::memcpy(blk.scales + 4 * v, piece + kScales + v * 64 + lane * 4, 4);
  return blk;
}

}  // namespace onecard::cpu
