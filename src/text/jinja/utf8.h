// The few UTF-8 conversions that Python's code-point string semantics need (len, indexing, slicing,
// reversing). Malformed bytes decode as U+FFFD so that text from any source can be handled.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace onecard::text::jinja {

std::vector<char32_t> utf8_decode(std::string_view s);
void utf8_append(std::string& out, char32_t cp);
std::string utf8_encode(const std::vector<char32_t>& cps);
// Number of code points; ASCII-only strings need no decoding.
size_t utf8_length(std::string_view s);
bool is_ascii(std::string_view s);

}  // namespace onecard::text::jinja
