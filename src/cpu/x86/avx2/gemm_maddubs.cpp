// The AVX2 batched kernel's passes, by vpmaddubsw (gemm_passes.h).
#include <cassert>
#include <cstring>
#include <utility>

#include "cpu/x86.h"
#include "cpu/x86/avx2/gemm.h"
#include "cpu/x86/avx2/gemm_pass.h"
#include "quant/blocks.h"

#define ONECARD_GEMM_TARGET ONECARD_AVX2

namespace onecard::cpu::avx2 {
namespace maddubs {
namespace {

constexpr bool kVnni = false;

#include "cpu/x86/avx2/gemm_passes.h"

}  // namespace
}  // namespace maddubs

Passes maddubs_passes(const IntFormat& f) {
  return maddubs::passes_for(f);
}

}  // namespace onecard::cpu::avx2
