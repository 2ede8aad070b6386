// The tensors of a synthetic model: names, shapes and order exactly as real deepseek2 GGUF files have them,
// the ggml type each gets for the requested weight type, and the distribution its values are drawn from.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/types.h"
#include "synth/spec.h"
#include "synth/weights.h"

namespace onecard::synth {

struct TensorPlan {
  std::string name;
  std::vector<uint64_t> ne;  // ne[0] contiguous (the input dimension)
  gguf::GgmlType type = gguf::GgmlType::F32;
  Distribution dist;

  uint64_t n_elements() const;
  uint64_t n_bytes() const;
};

// All tensors in file order: token_embd, the blocks, output_norm, output.
std::vector<TensorPlan> plan_tensors(const ModelSpec& spec);

}  // namespace onecard::synth
