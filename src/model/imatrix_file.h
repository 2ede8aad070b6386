// Importance matrices: per weight matrix (and per expert of a stacked expert tensor), the sum over
// calibration tokens of each input column's squared activation, and how many tokens reached it. Stored in
// the GGUF-based format that llama.cpp's imatrix tools read and write: general.type = "imatrix",
// imatrix.datasets, imatrix.chunk_count, imatrix.chunk_size, and per matrix two F32 tensors,
// "<name>.in_sum2" [n_per_row, n_mat] and "<name>.counts" [1, n_mat].
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace onecard::model {

struct ImatrixEntry {
  std::string name;           // the weight tensor's GGUF name, e.g. "blk.3.ffn_down_exps.weight"
  int64_t n_per_row = 0;      // input columns of one matrix
  int64_t n_mat = 1;          // 1 for a matrix, n_expert for a stacked expert tensor
  std::vector<float> sum2;    // n_mat * n_per_row, matrix by matrix: sum of x^2 per input column
  std::vector<float> counts;  // n_mat: tokens whose activations were added to each matrix
};

struct Imatrix {
  std::vector<ImatrixEntry> entries;
  std::vector<std::string> datasets;  // calibration files
  uint32_t chunk_count = 0;
  uint32_t chunk_size = 0;

  const ImatrixEntry* find(std::string_view name) const;
};

// The importance of matrix `mat` of `e` for quantization: the mean squared activation per column
// (sum2 / count), n_per_row values; empty when no token reached that matrix.
std::vector<float> mean_squares(const ImatrixEntry& e, int64_t mat);

Status write_imatrix(const std::string& path, const Imatrix& m);
// Fails naming the file and the tensor or key for anything that is not a well-formed imatrix GGUF.
Result<Imatrix> read_imatrix(const std::string& path);

}  // namespace onecard::model
