// The AVX-VNNI table: the AVX2 one with the batched and packed GEMMs multiplying by vpdpbusd on ymm
// (x86/avx2/gemm.h, DotInsn::Vnni). The row dots stay AVX2's: they apply each sub-block's scale with the
// vpmaddwd that widens vpmaddubsw's sums, which vpdpbusd would not save, and decode is bound by memory.
#include "cpu/kernels.h"
#include "cpu/packed.h"
#include "cpu/x86/avx2/gemm.h"
#include "cpu/x86/avx2/packed.h"

namespace onecard::cpu {

KernelTable avx_vnni_kernels() {
  KernelTable k = avx2_kernels();
  k.isa = Isa::AvxVnni;
  for (size_t i = 0; i < kTypeSlots; ++i) {
    const auto type = static_cast<gguf::GgmlType>(i);
    if (k.gemm[type]) k.gemm[type].run = avx2::gemm_int_vnni;
    if (k.packed[type]) k.packed[type].gemm = avx2::gemm_packed_vnni;
  }
  return k;
}

}  // namespace onecard::cpu
