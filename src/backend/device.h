// The devices a backend runs on. A tensor carries its device, so that an op is sent to the backend that owns
// the memory it reads.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace onecard::backend {

enum class DeviceKind { kCpu, kCuda };

struct Device {
  DeviceKind kind = DeviceKind::kCpu;
  int index = 0;  // which card; always 0 for the CPU

  friend bool operator==(const Device&, const Device&) = default;
};

inline constexpr Device kCpu{};

// "cpu", "cuda0", ...
std::string device_name(Device d);
// "cpu", "cuda" (card 0), "cuda0", "cuda1", ...; the error lists the valid forms.
Result<Device> parse_device(std::string_view name);

}  // namespace onecard::backend
