// Random weights in any format for kernel tests: Gaussian rows quantized where onecard has a quantizer (but
// IQ4_NL and IQ4_XS, whose scale codes should all be exercised), otherwise random bytes with every fp16 scale
// field set to a finite, moderate value. Never zeros.
#pragma once

#include <cstdint>
#include <vector>

#include "gguf/types.h"

namespace onecard::cpu::testing {

std::vector<float> gaussian(int64_t n, uint64_t seed);
std::vector<uint8_t> random_weights(gguf::GgmlType type, int64_t rows, int64_t cols, uint64_t seed);

// The formats the tests cover: every one matmul() multiplies.
std::vector<gguf::GgmlType> all_matmul_types();

}  // namespace onecard::cpu::testing
