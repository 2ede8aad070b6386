// A weight matrix as it lies in a GGUF file: `rows` rows of `cols` elements in one block format, rows at a
// fixed byte stride. Expert tensors are `experts` such matrices one after another.
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/tensor.h"
#include "gguf/types.h"

namespace onecard::cpu {

struct Matrix {
  gguf::GgmlType type = gguf::GgmlType::F32;
  int64_t cols = 0;  // ne0: the input dimension, contiguous
  int64_t rows = 0;  // ne1: outputs
  size_t row_bytes = 0;
  const uint8_t* data = nullptr;

  const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes; }
  size_t bytes() const { return static_cast<size_t>(rows) * row_bytes; }
};

inline Matrix make_matrix(gguf::GgmlType type, int64_t cols, int64_t rows, const void* data) {
  return Matrix{type, cols, rows, static_cast<size_t>(gguf::row_bytes(type, static_cast<uint64_t>(cols))),
                static_cast<const uint8_t*>(data)};
}

// Matrix i of a backend weight on the CPU (an expert tensor holds n_mat of them).
inline Matrix to_matrix(const backend::Weight& w, int64_t i = 0) {
  return Matrix{w.type, w.cols, w.rows, w.row_bytes, w.data + static_cast<size_t>(i) * w.matrix_bytes()};
}

}  // namespace onecard::cpu
