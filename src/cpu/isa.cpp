#include "cpu/isa.h"

#include <cstdlib>
#include <string_view>

#include "base/cpu_features.h"

namespace onecard::cpu {
namespace {

std::vector<Isa> detect() {
  const CpuFeatures& f = cpu_features();
  std::vector<Isa> out{Isa::Scalar};
  if (!(f.avx2 && f.fma && f.f16c)) return out;
  out.push_back(Isa::Avx2);
  if (f.avx_vnni) out.push_back(Isa::AvxVnni);
  if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512_vnni) out.push_back(Isa::Avx512Vnni);
  return out;
}

const std::vector<Isa>& supported() {
  static const std::vector<Isa> isas = detect();
  return isas;
}

// The best supported ISA at or below the one ONECARD_CPU_ISA names (unknown names are ignored).
Isa choose() {
  const std::vector<Isa>& isas = supported();
  const char* env = std::getenv("ONECARD_CPU_ISA");
  if (env == nullptr) return isas.back();
  const std::string_view want(env);
  Isa cap = Isa::Avx512Vnni;
  if (want == "scalar") cap = Isa::Scalar;
  if (want == "avx2") cap = Isa::Avx2;
  if (want == "avxvnni") cap = Isa::AvxVnni;
  Isa best = Isa::Scalar;
  for (Isa isa : isas)
    if (isa <= cap) best = isa;
  return best;
}

}  // namespace

Isa active_isa() {
  static const Isa isa = choose();
  return isa;
}

std::vector<Isa> supported_isas() {
  return supported();
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar:
      return "scalar";
    case Isa::Avx2:
      return "avx2";
    case Isa::AvxVnni:
      return "avx-vnni";
    case Isa::Avx512Vnni:
      return "avx512-vnni";
  }
  return "?";
}

}  // namespace onecard::cpu
