// The AVX-512 VNNI table: the AVX2 one with the vpdpbusd row dots, the grid formats' mask-sign row dots and
// vector unpackers where there are some, the batched interleaving GEMM for every integer format, the packed
// GEMM for the formats with a packed layout (packed.h), AVX-512 float dots, activation quantizer and SiLU.
#include "cpu/kernels.h"
#include "cpu/act_quant.h"
#include "cpu/grid_avx2.h"
#include "cpu/ops.h"
#include "cpu/packed.h"
#include "cpu/unpack_avx512.h"
#include "cpu/x86/avx512/gemm.h"

namespace onecard::cpu {
namespace {

// From this many tokens on the batched kernel wins; with fewer, re-reading a weight row from L1 per token
// costs less than interleaving it.
constexpr int64_t kGemmMinTokens = 4;

}  // namespace

KernelTable avx512_kernels() {
  KernelTable k = avx2_kernels();
  k.isa = Isa::Avx512Vnni;
  for (size_t i = 0; i < kTypeSlots; ++i) {
    const auto type = static_cast<gguf::GgmlType>(i);
    if (const VecDotFn dot = vec_dot_avx512(type)) k.row_dot[type] = dot;
    if (const VecDotFn dot = vec_dot_grid_avx512(type)) k.row_dot[type] = dot;
    if (const UnpackFn unpack = unpack_avx512(type)) k.unpack[type] = unpack;
    if (const FloatDotFn dot = float_dot_avx512(type)) k.float_dot[type] = dot;
    if (int_format(type) != nullptr) k.gemm[type] = GemmKernel{gemm_int, kGemmBlockRows, kGemmMinTokens};
    if (packable(type)) k.packed[type] = PackedKernel{pack_matrix, gemm_packed};
  }
  k.quantize_act = quantize_act_avx512;
  k.silu_mul = silu_mul_avx512;
  k.latent_f32 = latent_avx512(false);
  k.latent_bf16 = latent_avx512(true);
  k.softmax = softmax_avx512;
  k.exp_sum = exp_sum_avx512;
  k.max_of = max_of_avx512;
  return k;
}

}  // namespace onecard::cpu
