// Human-readable sizes and counts for command output.
#pragma once

#include <cstdint>
#include <string>

namespace onecard {

std::string human_bytes(uint64_t bytes);  // "1.50 GiB"
std::string human_count(uint64_t count);  // "671.03 B", "37.5 M"

}  // namespace onecard
