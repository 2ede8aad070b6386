// What decoding one token reads of the weights: the figure that, times tokens per second, gives the memory
// bandwidth a decode run achieves (decode is memory-bound: DESIGN.md, CPU kernels).
#pragma once

#include <cstdint>

#include "base/result.h"
#include "gguf/file.h"
#include "model/hparams.h"

namespace onecard::app {

// Bytes of the file's weights one decoded token reads, each tensor it touches counted once at its stored
// type: attention, norms, dense FFNs, shared experts, router and bias, output norm and head in full; of each
// MoE layer's routed experts, n_expert_used of n_expert; of the token embedding, one row. MTP layers are not
// run and not counted. The tensors are those the forward binds (model/weights.cpp); a missing one is an error
// naming it.
Result<uint64_t> weight_bytes_per_token(const gguf::File& file, const model::HParams& hp);

}  // namespace onecard::app
