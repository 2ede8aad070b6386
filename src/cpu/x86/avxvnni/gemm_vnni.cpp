// The AVX-VNNI batched kernel's passes, by vpdpbusd on ymm (gemm_passes.h): the AVX2 kernel's layout and
// driver, with the int16 sums and their widening replaced by int32 sums.
#include <cassert>
#include <cstring>
#include <utility>

#include "cpu/x86.h"
#include "cpu/x86/avx2/gemm.h"
#include "cpu/x86/avx2/gemm_pass.h"
#include "quant/blocks.h"

#define ONECARD_GEMM_TARGET ONECARD_AVX_VNNI

namespace onecard::cpu::avx2 {
namespace vnni {
namespace {

constexpr bool kVnni = true;

#include "cpu/x86/avx2/gemm_passes.h"

}  // namespace
}  // namespace vnni

Passes vnni_passes(const IntFormat& f) {
  return vnni::passes_for(f);
}

}  // namespace onecard::cpu::avx2
