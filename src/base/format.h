// Human-readable sizes and counts for command output.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace onecard {

std::string human_bytes(uint64_t bytes);  // "1.50 GiB"
std::string human_count(uint64_t count);  // "671.03 B", "37.5 M"

// A size as users write it: "24GiB", "24G", "512MiB", "1.5GB", "4096B". K, M, G, T with or without "iB"
// are powers of 1024 (what cards and RAM are sold by); KB, MB, GB, TB powers of 1000; units are
// case-insensitive and may follow a space. A bare number is refused: "24" could mean bytes or GiB. The
// error quotes the text; callers prefix the flag.
Result<uint64_t> parse_bytes(std::string_view text);

}  // namespace onecard
