// Rewrites a GGUF file with its weights in another scheme (e.g. a BF16 model as Q4_K_M), streaming: tensors
// are converted a slab of rows at a time, the rows of a slab spread over the threads, so memory stays small
// whatever the model's size. An importance matrix, when given, weights each matrix's (each expert's) columns
// in the quantizers' error; overrides choose the type of the tensors they name.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/result.h"
#include "model/imatrix_file.h"
#include "model/weight_scheme.h"

namespace onecard::model {

struct QuantizeFileOptions {
  WeightScheme scheme = WeightScheme::kQ4_K_M;
  int n_threads = 0;
  bool progress = true;
  // Tried in order before the mix's rules; the first whose regex matches a tensor's whole name wins.
  std::vector<TypeOverride> overrides;
  // Importance per matrix (per expert of a stacked tensor), by tensor name; nullptr: none.
  const Imatrix* imatrix = nullptr;
  std::string imatrix_path;  // recorded in the output as quantize.imatrix.file
  // Called with each warning as it is found, before any data is written (the report keeps them too).
  std::function<void(const std::string&)> on_warning;
};

struct QuantizeFileReport {
  uint64_t bytes_in = 0;   // tensor data read
  uint64_t bytes_out = 0;  // tensor data written
  uint64_t tensors_converted = 0;
  uint64_t tensors_copied = 0;    // already in their target type
  uint64_t tensors_fallback = 0;  // rows not a multiple of the chosen type's block: another type
  uint64_t tensors_overridden = 0;
  uint64_t tensors_with_imatrix = 0;     // quantized with importance
  uint64_t tensors_without_imatrix = 0;  // quantized to an integer format, no entry (token_embd not counted)
  uint64_t experts_without_tokens = 0;   // experts of tensors with an entry that no calibration token reached
  std::vector<std::string> fallbacks;    // "name: rows of 128, Q4_K -> Q8_0"
  std::vector<std::string> warnings;
  double seconds = 0;
};

Result<QuantizeFileReport> quantize_file(const std::string& src, const std::string& dst,
                                         const QuantizeFileOptions& options);

}  // namespace onecard::model
