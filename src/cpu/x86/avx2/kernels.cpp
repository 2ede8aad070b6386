// The AVX2 table: the scalar one with the AVX2 row dots (vpmaddubsw), float dots, the batched GEMM for every
// integer format and the packed GEMM for the formats with a packed layout (x86/avx2/packed.h). Activations
// are still quantized and SiLU computed by the portable kernels, which give the same bytes.
#include "cpu/kernels.h"
#include "cpu/grid_avx2.h"
#include "cpu/ops.h"
#include "cpu/x86/avx2/gemm.h"
#include "cpu/x86/avx2/packed.h"

namespace onecard::cpu {
namespace {

// From this many tokens on the batched kernel wins over row dots that re-read each weight row from L1.
constexpr int64_t kGemmMinTokens = 4;

}  // namespace

KernelTable avx2_kernels() {
  KernelTable k = scalar_kernels();
  k.isa = Isa::Avx2;
  for (size_t i = 0; i < kTypeSlots; ++i) {
    const auto type = static_cast<gguf::GgmlType>(i);
    if (const VecDotFn dot = vec_dot_avx2(type)) k.row_dot[type] = dot;
    if (const VecDotFn dot = vec_dot_grid_avx2(type)) k.row_dot[type] = dot;
    if (const UnpackFn unpack = unpack_grid_avx2(type)) k.unpack[type] = unpack;
    if (const FloatDotFn dot = float_dot_avx2(type)) k.float_dot[type] = dot;
    if (int_format(type) != nullptr)
      k.gemm[type] = GemmKernel{avx2::gemm_int, avx2::kGemmBlockRows, kGemmMinTokens};
    if (packable(type)) k.packed[type] = PackedKernel{avx2::pack_matrix, avx2::gemm_packed};
  }
  k.latent_f32 = latent_avx2(false);
  k.latent_bf16 = latent_avx2(true);
  k.softmax = softmax_avx2;
  k.exp_sum = exp_sum_avx2;
  k.max_of = max_of_avx2;
  return k;
}

}  // namespace onecard::cpu
