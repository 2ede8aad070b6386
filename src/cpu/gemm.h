// What every batched int8 kernel reads besides the weights (the kernels themselves are entries of the kernel
// tables, kernels.h): each token's quantized activation row and its per-sub-block sums, with which a kernel
// removes the zero point z of the weight levels exactly: each sub-block's integer sum starts from -z * (the
// token's activation sum over the sub-block); affine formats add their offsets times that sum in float.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cpu/int_format.h"

namespace onecard::cpu {

// Besides its quantized activation row (format f.act), a kernel needs per token: per sub-block the int32
// -z * A (or, for affine formats, A as a float), then per unit the activation scale as a float.
size_t token_side_bytes(const IntFormat& f, int64_t n);
void token_side(const IntFormat& f, int64_t n, const uint8_t* act, uint8_t* side);

// count tokens: act[t] is token t's quantized row, side[t] its token_side.
struct GemmTokens {
  const uint8_t* const* act;
  const uint8_t* const* side;
  int64_t count;
};

}  // namespace onecard::cpu
