// Rows of a checkpoint tensor as float32: F32/F16/BF16/F64 widened, FP8 (e4m3fn, e5m2) multiplied by the
// scale of its block (DeepSeek's weight_scale_inv: one float per 128x128 block, value = fp8 * scale).
#pragma once

#include <cstdint>

#include "convert/safetensors.h"

namespace onecard::convert {

float fp8_e4m3_to_fp32(uint8_t v);
float fp8_e5m2_to_fp32(uint8_t v);

struct BlockScales {
  const StTensor* scales = nullptr;  // [ceil(rows/block_rows), ceil(cols/block_cols)]; nullptr: none
  uint32_t block_rows = 128, block_cols = 128;
};

// Row r (of cols values; a 1-D tensor is one row) of `t` into out. The shapes were checked before.
void read_row(const StTensor& t, const BlockScales& s, uint64_t r, uint64_t cols, float* out);

// What the block scales alone say of an FP8 tensor's values, without reading its weights: a block's values
// lie within its scale times the format's largest finite value (448 for e4m3, 57344 for e5m2). DeepSeek's
// scales are a block's amax / 448, so the bound is the block's amax up to rounding.
struct Fp8Range {
  float max_abs = 0;        // the largest bound over all blocks
  float min_block_max = 0;  // the smallest bound over the blocks with a nonzero scale (0: none)
  bool finite = true;       // every scale is finite
};
Fp8Range fp8_range(Dtype fp8, const StTensor& scales);

}  // namespace onecard::convert
