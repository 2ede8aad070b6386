// What this CPU can run, read once from cpuid and the OS (xgetbv), so kernels can pick their path at run time
// and one binary runs on any x86-64.
#pragma once

#include <cstdint>
#include <string>

namespace onecard {

struct CpuFeatures {
  std::string vendor;
  std::string model_name;
  bool sse42 = false;
  bool avx = false;
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx_vnni = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512_vnni = false;
  bool avx512_bf16 = false;
  bool amx_tile = false;
  bool amx_int8 = false;
  bool amx_bf16 = false;

  std::string summary() const;  // "AVX2 FMA F16C AVX512F ... " (supported features only)
};

const CpuFeatures& cpu_features();

struct SystemInfo {
  unsigned logical_cpus = 0;
  uint64_t memory_total = 0;      // bytes
  uint64_t memory_available = 0;  // bytes
};

SystemInfo system_info();

}  // namespace onecard
