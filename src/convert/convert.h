// `onecard convert`: a Hugging Face DeepSeek checkpoint folder → one deepseek2 GGUF. Everything is checked
// before the output is created (config, index, shards, every tensor's dtype and shape, the tokenizer); the
// data is then streamed tensor by tensor, a slab of rows at a time converted in parallel, into OUT.part,
// which is renamed to OUT at the end and removed on any error. Peak memory: one slab plus, for the split MLA
// layout, one kv_b_proj matrix.
#pragma once

#include <cstdint>
#include <string>

#include "base/result.h"
#include "convert/mapping.h"
#include "model/weight_scheme.h"

namespace onecard::convert {

struct ConvertOptions {
  model::WeightScheme scheme = model::WeightScheme::kBF16;  // bf16: FP8 weights as F16 where they fit
  MappingOptions mapping;
  std::string pre;  // tokenizer.ggml.pre to write instead of recognising it ("" recognises)
  int n_threads = 0;
  bool progress = true;
};

struct ConvertReport {
  uint64_t tensors = 0;
  uint64_t bytes_out = 0;   // tensor data written
  uint64_t fp8_as_f16 = 0;  // FP8 tensors asked for as BF16 and written as F16 (output_type.h)
  double seconds = 0;
};

Result<ConvertReport> convert_checkpoint(const std::string& hf_dir, const std::string& out_path,
                                         const ConvertOptions& options);

}  // namespace onecard::convert
