#include "text/jinja/utf8.h"

#include "text/unicode.h"

namespace onecard::text::jinja {

std::vector<char32_t> utf8_decode(std::string_view s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const Utf8Sequence seq = next_utf8(s, i);
    if (seq.status == Utf8Status::kComplete) {
      out.push_back(seq.code_point);
      i += seq.length;
    } else {
      out.push_back(kReplacementChar);
      ++i;
    }
  }
  return out;
}

void utf8_append(std::string& out, char32_t cp) {
  append_utf8(out, cp);
}

std::string utf8_encode(const std::vector<char32_t>& cps) {
  std::string out;
  out.reserve(cps.size());
  for (char32_t cp : cps) utf8_append(out, cp);
  return out;
}

bool is_ascii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

size_t utf8_length(std::string_view s) {
  return is_ascii(s) ? s.size() : utf8_decode(s).size();
}

}  // namespace onecard::text::jinja
