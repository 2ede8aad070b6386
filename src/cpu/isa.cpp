#include "cpu/isa.h"

#include <cstdlib>
#include <string_view>

#include "base/cpu_features.h"

namespace onecard::cpu {
namespace {

Isa detect() {
  const CpuFeatures& f = cpu_features();
  if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512_vnni && f.avx2 && f.fma && f.f16c) {
    return Isa::Avx512Vnni;
  }
  if (f.avx2 && f.fma && f.f16c) return Isa::Avx2;
  return Isa::Scalar;
}

Isa choose() {
  Isa isa = detect();
  if (const char* env = std::getenv("ONECARD_CPU_ISA")) {
    const std::string_view want(env);
    if (want == "scalar") isa = Isa::Scalar;
    if (want == "avx2" && isa == Isa::Avx512Vnni) isa = Isa::Avx2;
  }
  return isa;
}

}  // namespace

Isa active_isa() {
  static const Isa isa = choose();
  return isa;
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out{Isa::Scalar};
  const Isa best = detect();
  if (best != Isa::Scalar) out.push_back(Isa::Avx2);
  if (best == Isa::Avx512Vnni) out.push_back(Isa::Avx512Vnni);
  return out;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar:
      return "scalar";
    case Isa::Avx2:
      return "avx2";
    case Isa::Avx512Vnni:
      return "avx512-vnni";
  }
  return "?";
}

}  // namespace onecard::cpu
