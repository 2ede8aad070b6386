// The instruction set the CPU kernels use, chosen once at run time from cpuid so that one binary runs on any
// x86-64. ONECARD_CPU_ISA=scalar|avx2|avxvnni|avx512 lowers the choice (for comparisons and tests); it never
// raises it above what the CPU supports.
#pragma once

#include <vector>

namespace onecard::cpu {

enum class Isa {
  Scalar,      // portable C++
  Avx2,        // AVX2 + FMA + F16C: int8 dot products via vpmaddubsw/vpmaddwd
  AvxVnni,     // AVX2 + AVX-VNNI (Alder Lake and later, Zen 5): vpdpbusd on ymm in the batched kernel. Not
               // below Avx512Vnni: Zen 4 and Ice Lake have AVX-512 VNNI without it.
  Avx512Vnni,  // AVX-512 F/BW/VL + VNNI: vpdpbusd/vpdpwssd, and the batched interleaved kernel
               // (x86/avx512/gemm.h)
};

// The best ISA this CPU supports, capped by ONECARD_CPU_ISA.
Isa active_isa();
// Every ISA this CPU can run, scalar first and the best last (tests compare each one against scalar).
std::vector<Isa> supported_isas();
const char* isa_name(Isa isa);

}  // namespace onecard::cpu
