// The AVX2 table: the scalar one with the AVX2 row dots (vpmaddubsw) and float dots. Activations are still
// quantized and SiLU computed by the portable kernels, which give the same bytes.
#include "cpu/kernels.h"
#include "cpu/grid_avx2.h"

namespace onecard::cpu {

KernelTable avx2_kernels() {
  KernelTable k = scalar_kernels();
  k.isa = Isa::Avx2;
  for (size_t i = 0; i < kTypeSlots; ++i) {
    const auto type = static_cast<gguf::GgmlType>(i);
    if (const VecDotFn dot = vec_dot_avx2(type)) k.row_dot[type] = dot;
    if (const VecDotFn dot = vec_dot_grid_avx2(type)) k.row_dot[type] = dot;
    if (const UnpackFn unpack = unpack_grid_avx2(type)) k.unpack[type] = unpack;
    if (const FloatDotFn dot = float_dot_avx2(type)) k.float_dot[type] = dot;
  }
  return k;
}

}  // namespace onecard::cpu
