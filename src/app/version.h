#pragma once

namespace onecard::app {
inline constexpr const char* kVersion = "0.1.0";
}  // namespace onecard::app
