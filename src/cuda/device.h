// The CUDA devices this machine has, as the GPU backend sees them. Compiled only in the CUDA build.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace onecard::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int compute_major = 0;
  int compute_minor = 0;
  int multiprocessors = 0;
  uint64_t memory_total = 0;
  uint64_t memory_free = 0;
};

// An empty list when no driver or device is present (the CPU path is used then); `why_none` says why.
std::vector<DeviceInfo> list_devices(std::string* why_none = nullptr);

}  // namespace onecard::cuda
