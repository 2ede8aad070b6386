// The portable table: the reference row dot and unpacking for every integer format, float dots, the
// portable activation quantizer and SiLU. No batched GEMM and no packer: without wide registers, reading a
// row once per token from cache costs less than rearranging it.
#include "cpu/kernels.h"
#include "cpu/act_quant.h"
#include "cpu/ops.h"

namespace onecard::cpu {

KernelTable scalar_kernels() {
  KernelTable k;
  k.isa = Isa::Scalar;
  for (size_t i = 0; i < kTypeSlots; ++i) {
    const auto type = static_cast<gguf::GgmlType>(i);
    if (const IntFormat* f = int_format(type)) {
      k.row_dot[type] = vec_dot_scalar;
      k.unpack[type] = f->unpack;
    }
    k.float_dot[type] = float_dot_scalar(type);
  }
  k.quantize_act = quantize_act_scalar;
  k.silu_mul = silu_mul_scalar;
  k.latent_f32 = latent_scalar(false);
  k.latent_bf16 = latent_scalar(true);
  k.softmax = softmax_scalar;
  k.exp_sum = exp_sum_scalar;
  k.max_of = max_of_scalar;
  return k;
}

}  // namespace onecard::cpu
