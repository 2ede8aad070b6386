#include "backend/device.h"

#include <charconv>

#include <fmt/format.h>

namespace onecard::backend {

std::string device_name(Device d) {
  return d.kind == DeviceKind::kCpu ? std::string("cpu") : fmt::format("cuda{}", d.index);
}

Result<Device> parse_device(std::string_view name) {
  if (name == "cpu") return kCpu;
  constexpr std::string_view kCuda = "cuda";
  if (name.starts_with(kCuda)) {
    std::string_view index = name.substr(kCuda.size());
    if (index.empty()) return Device{DeviceKind::kCuda, 0};
    int i = 0;
    const auto [end, ec] = std::from_chars(index.data(), index.data() + index.size(), i);
    if (ec == std::errc() && end == index.data() + index.size() && i >= 0)
      return Device{DeviceKind::kCuda, i};
  }
  return make_error("device '{}' is not one of cpu, cuda, cuda0, cuda1, ...", name);
}

}  // namespace onecard::backend
