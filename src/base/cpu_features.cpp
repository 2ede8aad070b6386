#include "base/cpu_features.h"

#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define ONECARD_X86 1
#endif

namespace onecard {
namespace {

#if ONECARD_X86
struct Regs {
  unsigned a = 0, b = 0, c = 0, d = 0;
};

Regs cpuid(unsigned leaf, unsigned sub = 0) {
  Regs r;
  __cpuid_count(leaf, sub, r.a, r.b, r.c, r.d);
  return r;
}

uint64_t xgetbv0() {
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t{hi} << 32) | lo;
}

bool bit(unsigned v, int i) {
  return ((v >> i) & 1u) != 0;
}

CpuFeatures detect() {
  CpuFeatures f;
  const Regs v = cpuid(0);
  char vendor[13] = {};
  std::memcpy(vendor, &v.b, 4);
  std::memcpy(vendor + 4, &v.d, 4);
  std::memcpy(vendor + 8, &v.c, 4);
  f.vendor = vendor;
  const unsigned max_leaf = v.a;

  if (cpuid(0x80000000).a >= 0x80000004) {
    char brand[49] = {};
    for (unsigned i = 0; i < 3; ++i) {
      const Regs r = cpuid(0x80000002 + i);
      std::memcpy(brand + 16 * i, &r.a, 4);
      std::memcpy(brand + 16 * i + 4, &r.b, 4);
      std::memcpy(brand + 16 * i + 8, &r.c, 4);
      std::memcpy(brand + 16 * i + 12, &r.d, 4);
    }
    f.model_name = brand;
    const auto first = f.model_name.find_first_not_of(' ');
    f.model_name = first == std::string::npos ? "" : f.model_name.substr(first);
  }

  const Regs l1 = cpuid(1);
  f.sse42 = bit(l1.c, 20);
  // A feature counts only when the OS saves its registers on a context switch (XCR0).
  const bool osxsave = bit(l1.c, 27);
  const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool ymm_os = (xcr0 & 0x6) == 0x6;
  const bool zmm_os = ymm_os && (xcr0 & 0xe0) == 0xe0;
  const bool amx_os = (xcr0 & 0x60000) == 0x60000;
  f.avx = bit(l1.c, 28) && ymm_os;
  f.fma = bit(l1.c, 12) && ymm_os;
  f.f16c = bit(l1.c, 29) && ymm_os;
  if (max_leaf >= 7) {
    const Regs l7 = cpuid(7, 0);
    f.avx2 = bit(l7.b, 5) && ymm_os;
    f.avx512f = bit(l7.b, 16) && zmm_os;
    f.avx512bw = bit(l7.b, 30) && zmm_os;
    f.avx512vl = bit(l7.b, 31) && zmm_os;
    f.avx512_vnni = bit(l7.c, 11) && zmm_os;
    f.amx_bf16 = bit(l7.d, 22) && amx_os;
    f.amx_tile = bit(l7.d, 24) && amx_os;
    f.amx_int8 = bit(l7.d, 25) && amx_os;
    const Regs l71 = cpuid(7, 1);
    f.avx_vnni = bit(l71.a, 4) && ymm_os;
    f.avx512_bf16 = bit(l71.a, 5) && zmm_os;
  }
  return f;
}
#else
CpuFeatures detect() {
  return CpuFeatures{};
}
#endif

}  // namespace

std::string CpuFeatures::summary() const {
  std::string s;
  auto add = [&s](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(sse42, "SSE4.2");
  add(avx, "AVX");
  add(avx2, "AVX2");
  add(fma, "FMA");
  add(f16c, "F16C");
  add(avx_vnni, "AVX-VNNI");
  add(avx512f, "AVX512F");
  add(avx512bw, "AVX512BW");
  add(avx512vl, "AVX512VL");
  add(avx512_vnni, "AVX512-VNNI");
  add(avx512_bf16, "AVX512-BF16");
  add(amx_tile, "AMX-TILE");
  add(amx_int8, "AMX-INT8");
  add(amx_bf16, "AMX-BF16");
  return s.empty() ? "none beyond the x86-64 baseline" : s;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

SystemInfo system_info() {
  SystemInfo s;
  s.logical_cpus = std::thread::hardware_concurrency();
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  while (std::getline(meminfo, line)) {
    std::istringstream in(line);
    std::string name;
    uint64_t kib = 0;
    in >> name >> kib;
    if (name == "MemTotal:") s.memory_total = kib * 1024;
    if (name == "MemAvailable:") s.memory_available = kib * 1024;
  }
  return s;
}

}  // namespace onecard
