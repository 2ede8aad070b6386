#include "text/unicode.h"

#include <array>

namespace onecard::text {
namespace {

// The allowed range of the second byte after a lead byte (RFC 3629 table): narrower than 80..BF after
// E0/ED/F0/F4, which is what excludes overlong forms, surrogates and code points above U+10FFFF.
struct LeadInfo {
  uint8_t length;  // 0: not a lead byte
  uint8_t lo, hi;  // range of the second byte
};

LeadInfo lead_info(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b >= 0xE1 && b <= 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

struct ByteMap {
  std::array<std::string, 256> to_symbol;
  std::array<int16_t, 324> from_symbol;  // code points up to U+0143 are the only symbols; -1: none
};

ByteMap make_byte_map() {
  ByteMap m;
  m.from_symbol.fill(-1);
  uint32_t next_extra = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    const uint32_t cp = printable ? b : next_extra++;
    append_utf8(m.to_symbol[b], cp);
    m.from_symbol[cp] = static_cast<int16_t>(b);
  }
  return m;
}

const ByteMap& byte_map() {
  static const ByteMap m = make_byte_map();
  return m;
}

}  // namespace

Utf8Sequence next_utf8(std::string_view s, size_t pos) {
  const auto lead = static_cast<uint8_t>(s[pos]);
  const LeadInfo info = lead_info(lead);
  if (info.length == 0) return {Utf8Status::kInvalid, 1, 0};
  if (info.length == 1) return {Utf8Status::kComplete, 1, lead};
  uint32_t cp = lead & (0xFFu >> (info.length + 1));
  for (size_t k = 1; k < info.length; ++k) {
    if (pos + k >= s.size()) return {Utf8Status::kTruncated, k, 0};
    const auto b = static_cast<uint8_t>(s[pos + k]);
    const uint8_t lo = k == 1 ? info.lo : 0x80;
    const uint8_t hi = k == 1 ? info.hi : 0xBF;
    // The bytes before the bad one form one maximal ill-formed subpart, replaced by a single U+FFFD.
    if (b < lo || b > hi) return {Utf8Status::kInvalid, k, 0};
    cp = (cp << 6) | (b & 0x3F);
  }
  return {Utf8Status::kComplete, info.length, cp};
}

std::optional<size_t> find_invalid_utf8(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    // ASCII runs are the common case in prompts; skip them without the table.
    if (static_cast<uint8_t>(s[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const Utf8Sequence seq = next_utf8(s, pos);
    if (seq.status != Utf8Status::kComplete) return pos;
    pos += seq.length;
  }
  return std::nullopt;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string sanitize_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (pos < s.size()) {
    const Utf8Sequence seq = next_utf8(s, pos);
    if (seq.status == Utf8Status::kComplete) {
      out.append(s.substr(pos, seq.length));
    } else {
      append_utf8(out, kReplacementChar);
    }
    pos += seq.length;
  }
  return out;
}

std::string_view byte_to_symbol(uint8_t byte) {
  return byte_map().to_symbol[byte];
}

std::optional<uint8_t> symbol_to_byte(uint32_t code_point) {
  const auto& from = byte_map().from_symbol;
  if (code_point >= from.size() || from[code_point] < 0) return std::nullopt;
  return static_cast<uint8_t>(from[code_point]);
}

}  // namespace onecard::text
