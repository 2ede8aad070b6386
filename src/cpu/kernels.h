// The CPU kernels of one instruction set, as one table: what each weight format can be multiplied with, and
// the element-wise kernels. Each ISA fills its table in its own folder (scalar/, x86/avx2/, x86/avxvnni/,
// x86/avx512/), starting from the table of the ISA below it and overriding the entries it has a faster kernel
// for, so a table is complete where the scalar one is. Callers ask the table whether it has an entry (a
// batched GEMM for a format, a packer) and never test the ISA; `inspect --system` and the kernel coverage
// test are generated from the tables.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "cpu/float_dot.h"
#include "cpu/gemm.h"
#include "cpu/int_format.h"
#include "cpu/isa.h"
#include "cpu/latent_attention.h"
#include "cpu/matrix.h"
#include "cpu/vec_dot.h"
#include "gguf/types.h"

namespace onecard::cpu {

struct PackedMatrix;  // packed.h

// One entry per ggml type id (all are below 40); ids past the end read as empty.
inline constexpr size_t kTypeSlots = 40;

template <class T>
struct PerType {
  T at[kTypeSlots]{};

  T& operator[](gguf::GgmlType t) { return at[static_cast<size_t>(t)]; }
  const T& operator[](gguf::GgmlType t) const {
    static const T none{};
    const auto i = static_cast<size_t>(t);
    return i < kTypeSlots ? at[i] : none;
  }
};

// y[t * ldy + i] = row r0 + i of w times token t, for i < nr and t < tokens.count (gemm.h). prefetch /
// prefetch_bytes name the weights the thread multiplies next (may be null / 0).
using GemmFn = void (*)(const IntFormat& f, const Matrix& w, int64_t r0, int64_t nr, GemmTokens tokens,
                        float* y, int64_t ldy, const uint8_t* prefetch, size_t prefetch_bytes);

// The batched int8 product of a format: it reads each weight block once for many tokens, at the cost of
// rearranging it, so it pays from `min_tokens` tokens on; below that the row dot is faster.
struct GemmKernel {
  GemmFn run = nullptr;
  // Rows one call fills its registers with: callers split rows into tasks of this size.
  int64_t block_rows = 0;
  int64_t min_tokens = 0;

  explicit operator bool() const { return run != nullptr; }
};

// Weights rearranged once at load (packed.h) for a batched kernel that then reads them as they lie.
struct PackedKernel {
  // Matrices [first, last) of an expert tensor w into out (pack_matrix).
  void (*pack)(const Matrix& w, int64_t first, int64_t last, uint8_t* out) = nullptr;
  // Block b (kPackedBlockRows rows) of p times the tokens (gemm_packed).
  void (*gemm)(const PackedMatrix& p, int64_t b, GemmTokens tokens, float* y, int64_t ldy) = nullptr;

  explicit operator bool() const { return pack != nullptr && gemm != nullptr; }
};

using QuantizeActFn = void (*)(ActFormat f, const float* x, void* dst, int64_t n);
using SiluMulFn = void (*)(float* gate, const float* up, int64_t n);

struct KernelTable {
  Isa isa = Isa::Scalar;
  // Integer formats (int_format(type) != nullptr): one weight row times one activation row quantized to
  // int_format(type)->act. Present for every integer format.
  PerType<VecDotFn> row_dot;
  // The integer view of one block (int_format.h), the same bytes as the format's scalar unpack.
  PerType<UnpackFn> unpack;
  // Integer formats with a batched kernel; empty where the ISA has none.
  PerType<GemmKernel> gemm;
  // Formats whose experts are worth repacking at load for this ISA; empty elsewhere.
  PerType<PackedKernel> packed;
  // F32, F16 and BF16: rows times float activations (float_dot.h).
  PerType<FloatDotFn> float_dot;
  // Element-wise kernels. The activation quantizer, silu_mul and softmax are taken from the table of the best
  // ISA the CPU has (best_kernels()), not from the table a matmul runs with, so that every kernel path sees
  // the very same activations and hidden values (act_quant.h, ops.h).
  QuantizeActFn quantize_act = nullptr;
  SiluMulFn silu_mul = nullptr;
  void (*softmax)(float* x, int64_t n) = nullptr;
  float (*exp_sum)(float* x, int64_t n, float shift) = nullptr;
  float (*max_of)(const float* x, int64_t n) = nullptr;
  // MLA attention over the latent cache (latent_attention.h), for f32 and for bf16 cache rows.
  LatentKernels latent_f32, latent_bf16;
};

// The table of an ISA this CPU supports (one of supported_isas()).
const KernelTable& kernels(Isa isa);
// The table of active_isa(): the best ISA, capped by ONECARD_CPU_ISA.
const KernelTable& active_kernels();
// The table of the best ISA the CPU has, whatever ONECARD_CPU_ISA says.
const KernelTable& best_kernels();

// One line describing active_kernels(), entry by entry with the ISA that provides it, for `onecard inspect
// --system`.
std::string kernel_path();
// The same for any table.
std::string describe(const KernelTable& k);

// The tables, each built on the one below (defined in scalar/, x86/avx2/, x86/avxvnni/, x86/avx512/); the
// AVX-512 one on AVX2's, since not every AVX-512 CPU has AVX-VNNI.
KernelTable scalar_kernels();
KernelTable avx2_kernels();
KernelTable avx_vnni_kernels();
KernelTable avx512_kernels();

}  // namespace onecard::cpu
