// Rewrites a GGUF file with its weights in another scheme (e.g. a BF16 model as Q4_K_M), streaming: tensors
// are converted a slab of rows at a time, so memory stays small whatever the model's size.
#pragma once

#include <cstdint>
#include <string>

#include "base/result.h"
#include "model/weight_scheme.h"

namespace onecard::model {

struct QuantizeFileOptions {
  WeightScheme scheme = WeightScheme::kQ4_K_M;
  int n_threads = 0;
  bool progress = true;
};

struct QuantizeFileReport {
  uint64_t bytes_in = 0;   // tensor data read
  uint64_t bytes_out = 0;  // tensor data written
  uint64_t tensors_converted = 0;
  uint64_t tensors_copied = 0;  // already in their target type
  double seconds = 0;
};

Result<QuantizeFileReport> quantize_file(const std::string& src, const std::string& dst,
                                         const QuantizeFileOptions& options);

}  // namespace onecard::model
