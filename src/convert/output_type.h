// The ggml type each GGUF tensor is written in: the weight scheme's, with one exception. A weight matrix
// asked for as BF16 whose sources are all FP8 with block scales is written as F16 where the scales show that
// its values fit F16. F16 has BF16's size and 3 more mantissa bits (11 significant against 8): an FP8 value
// (4 significant bits) times its float32 block scale has up to 28, and rounding moves it by up to 2^-8 of
// itself in BF16, 2^-11 in F16, 8x less. On the golden FP8 model that is the difference between a BF16 file
// whose logits miss the forward-pass bound (one position's expert choice flips) and one that meets it.
#pragma once

#include "convert/checkpoint.h"
#include "convert/dequant.h"
#include "convert/mapping.h"
#include "gguf/types.h"
#include "model/weight_scheme.h"

namespace onecard::convert {

// Every block's values are F16 normals (its largest at least 2^-14; below, F16's subnormals keep fewer bits)
// and at most 4096, 16x below F16's largest (65504), as headroom for readers that compute in F16.
bool fp8_fits_f16(const Fp8Range& r);

struct TensorType {
  gguf::GgmlType type = gguf::GgmlType::F32;
  bool fp8_as_f16 = false;  // the scheme asked for BF16; written as F16 by the rule above
};

TensorType output_type(const Checkpoint& ck, const TensorMap& tm, model::WeightScheme scheme,
                       const model::MixContext& mix);

}  // namespace onecard::convert
