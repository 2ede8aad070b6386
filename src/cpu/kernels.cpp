// Choosing the table, and describing one.
#include "cpu/kernels.h"

#include <vector>

namespace onecard::cpu {
namespace {

// Built once: a table is a few kilobytes of pointers, and callers fetch it on every matmul.
const KernelTable& table(Isa isa) {
  static const KernelTable scalar = scalar_kernels();
  static const KernelTable avx2 = avx2_kernels();
  static const KernelTable avx_vnni = avx_vnni_kernels();
  static const KernelTable avx512 = avx512_kernels();
  switch (isa) {
    case Isa::Avx512Vnni:
      return avx512;
    case Isa::AvxVnni:
      return avx_vnni;
    case Isa::Avx2:
      return avx2;
    case Isa::Scalar:
      break;
  }
  return scalar;
}

// The lowest ISA at or below k's whose table has the same entry, i.e. the one whose kernel k uses.
template <class Get>
Isa owner(const KernelTable& k, Get get) {
  for (Isa isa : supported_isas()) {
    if (get(kernels(isa)) == get(k)) return isa;
    if (isa == k.isa) break;
  }
  return k.isa;
}

// "avx512-vnni Q4_0 Q4_1, scalar IQ1_M": the types with an entry, grouped by the ISA providing it, best
// first; "none" when no type has one.
template <class Get>
std::string by_owner(const KernelTable& k, Get get) {
  const std::vector<Isa> isas = supported_isas();
  std::string out;
  for (auto it = isas.rbegin(); it != isas.rend(); ++it) {
    std::string types;
    for (size_t i = 0; i < kTypeSlots; ++i) {
      const auto type = static_cast<gguf::GgmlType>(i);
      if (!get(k, type) || owner(k, [&](const KernelTable& x) { return get(x, type); }) != *it) continue;
      types += ' ';
      types += gguf::type_name(type);
    }
    if (types.empty()) continue;
    if (!out.empty()) out += ", ";
    out += isa_name(*it) + types;
  }
  return out.empty() ? "none" : out;
}

}  // namespace

const KernelTable& kernels(Isa isa) {
  return table(isa);
}

const KernelTable& active_kernels() {
  return table(active_isa());
}

const KernelTable& best_kernels() {
  // Asked on every activation row: supported_isas() builds a vector.
  static const KernelTable& best = table(supported_isas().back());
  return best;
}

std::string describe(const KernelTable& k) {
  auto row_dot = [](const KernelTable& x, gguf::GgmlType t) { return x.row_dot[t]; };
  auto gemm = [](const KernelTable& x, gguf::GgmlType t) { return x.gemm[t].run; };
  auto packed = [](const KernelTable& x, gguf::GgmlType t) { return x.packed[t].gemm; };
  auto float_dot = [](const KernelTable& x, gguf::GgmlType t) { return x.float_dot[t]; };
  // Every GEMM of a table has had the same shape so far: the first one found stands for all.
  std::string gemm_shape;
  for (const GemmKernel& g : k.gemm.at) {
    if (g) {
      gemm_shape = " from " + std::to_string(g.min_tokens) + " tokens in " + std::to_string(g.block_rows) +
                   "-row blocks";
      break;
    }
  }
  const KernelTable& best = best_kernels();
  const char* quantizer = isa_name(owner(best, [](const KernelTable& x) { return x.quantize_act; }));
  const char* silu = isa_name(owner(best, [](const KernelTable& x) { return x.silu_mul; }));
  return std::string(isa_name(k.isa)) + " - int8 row dots on 8-bit activations: " + by_owner(k, row_dot) +
         "; batched GEMM" + gemm_shape + ": " + by_owner(k, gemm) +
         "; experts repacked at load: " + by_owner(k, packed) + "; fp32 FMA rows: " + by_owner(k, float_dot) +
         "; activation quantizer " + quantizer + ", SiLU " + silu +
         " (the CPU's best, whatever the kernel ISA)";
}

std::string kernel_path() {
  return describe(active_kernels());
}

}  // namespace onecard::cpu
