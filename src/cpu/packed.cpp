// Moving Q2_K, Q4_K and Q6_K rows into the packed layout (packed.h) and back, and the memory that holds them.
#include "cpu/packed.h"

#include <sys/mman.h>

#include <cassert>
#include <cstdlib>
#include <cstring>

namespace onecard::cpu {
namespace {

// Where each field of a file block goes in a piece: `bytes` bytes at `from` in the block become vectors of
// 16 dwords from `to` (vector v holds bytes from + 4v .. from + 4v + 3 of the 16 rows); fp16 fields (bytes 2)
// become 16 halves.
struct Field {
  int from, bytes, to;
};
struct Layout {
  size_t block_bytes, piece_bytes;
  Field fields[4];
  int n_fields;
};

constexpr Layout kQ4K{144, 2304, {{16, 128, 0}, {0, 2, 2048}, {2, 2, 2080}, {4, 12, 2112}}, 4};
constexpr Layout kQ2K{84, 1344, {{16, 64, 0}, {0, 16, 1024}, {80, 2, 1280}, {82, 2, 1312}}, 4};
constexpr Layout kQ6K{210, 3392, {{0, 128, 0}, {128, 64, 2048}, {192, 16, 3072}, {208, 2, 3328}}, 4};

const Layout* layout_of(gguf::GgmlType type) {
  switch (type) {
    case gguf::GgmlType::Q2_K:
      return &kQ2K;
    case gguf::GgmlType::Q4_K:
      return &kQ4K;
    case gguf::GgmlType::Q6_K:
      return &kQ6K;
    default:
      return nullptr;
  }
}

// Where row `lane`'s bytes of field f, chunk v (4 bytes, or the whole fp16 value) lie in a piece.
size_t at(const Field& f, int v, int lane) {
  return f.bytes == 2 ? static_cast<size_t>(f.to + 2 * lane) : static_cast<size_t>(f.to + 64 * v + 4 * lane);
}

// The piece of panel g of block b, unit u.
size_t piece_offset(const PackedMatrix& p, int64_t b, int g, int64_t u) {
  return p.block_offset(b) + static_cast<size_t>(u * p.panels(b) + g) * p.piece();
}

}  // namespace

size_t packed_piece_bytes(gguf::GgmlType type) {
  const Layout* l = layout_of(type);
  return l == nullptr ? 0 : l->piece_bytes;
}

void PackedBuffer::Free::operator()(uint8_t* p) const {
  std::free(p);
}

PackedBuffer allocate_packed(size_t bytes) {
  // 2 MiB alignment lets transparent huge pages back the whole range: the experts are read from random
  // places and each 4 KiB page would otherwise cost a TLB miss.
  constexpr size_t kAlign = size_t{2} << 20;
  const size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
  auto* p = static_cast<uint8_t*>(std::aligned_alloc(kAlign, rounded == 0 ? kAlign : rounded));
  if (p == nullptr) return {};
  madvise(p, rounded, MADV_HUGEPAGE);
  PackedBuffer out;
  out.data.reset(p);
  out.bytes = bytes;
  return out;
}

void pack_matrix(const Matrix& w, int64_t first, int64_t last, uint8_t* out) {
  const Layout& l = *layout_of(w.type);
  const PackedMatrix shape{w.type, w.rows, w.cols, nullptr};
  assert(static_cast<size_t>(shape.units()) * l.block_bytes == w.row_bytes);
  for (int64_t m = first; m < last; ++m) {
    const uint8_t* src = w.data + static_cast<size_t>(m) * w.bytes();
    uint8_t* dst = out + static_cast<size_t>(m) * shape.bytes();
    for (int64_t b = 0; b < shape.blocks(); ++b) {
      for (int64_t u = 0; u < shape.units(); ++u) {
        for (int g = 0; g < shape.panels(b); ++g) {
          uint8_t* piece = dst + piece_offset(shape, b, g, u);
          std::memset(piece, 0, l.piece_bytes);
          for (int r = 0; r < kPackedPanelRows; ++r) {
            const int64_t row = b * kPackedBlockRows + g * kPackedPanelRows + r;
            if (row >= w.rows) break;
            const uint8_t* blk = src + static_cast<size_t>(row) * w.row_bytes + u * l.block_bytes;
            for (int i = 0; i < l.n_fields; ++i) {
              const Field& f = l.fields[i];
              for (int v = 0; v < (f.bytes + 3) / 4; ++v) {
                std::memcpy(piece + at(f, v, r), blk + f.from + 4 * v, f.bytes == 2 ? 2 : 4);
              }
            }
          }
        }
      }
    }
  }
}

void packed_block(const PackedMatrix& p, int64_t r, int64_t u, uint8_t* out) {
  const Layout& l = *layout_of(p.type);
  const int64_t b = r / kPackedBlockRows;
  const int g = static_cast<int>(r % kPackedBlockRows / kPackedPanelRows);
  const auto lane = static_cast<int>(r % kPackedPanelRows);
  const uint8_t* piece = p.data + piece_offset(p, b, g, u);
  for (int i = 0; i < l.n_fields; ++i) {
    const Field& f = l.fields[i];
    for (int v = 0; v < (f.bytes + 3) / 4; ++v) {
      std::memcpy(out + f.from + 4 * v, piece + at(f, v, lane), f.bytes == 2 ? 2 : 4);
    }
  }
}

}  // namespace onecard::cpu
