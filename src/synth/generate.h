// Writes a synthetic deepseek2 GGUF: metadata and vocabulary first, then every tensor streamed in pieces of a
// few MB, so that multi-GB files never sit in memory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "synth/spec.h"
#include "synth/tensors.h"

namespace onecard::synth {

struct GenerateResult {
  uint64_t file_bytes = 0;
  uint64_t tensor_bytes = 0;  // what the tensors take (absent from a header-only file)
  size_t n_tensors = 0;
  double seconds = 0.0;
};

// Writes `path` (replacing it); a failed write removes the partial file. `progress` draws a bar on stderr.
Result<GenerateResult> generate(const ModelSpec& spec, const std::string& path, bool progress);

// Writes only the header (metadata with gguf::kHeaderOnlyKey set, vocabulary, tensor infos) of the file
// generate() would write: real shapes for planning and inspection, which no model load accepts.
Result<GenerateResult> generate_header(const ModelSpec& spec, const std::string& path);

// The bytes generate() writes for one tensor of a file made with `seed`.
Result<std::vector<uint8_t>> tensor_bytes(uint64_t seed, const TensorPlan& tensor);

}  // namespace onecard::synth
