// UTF-8 validation and decoding, and the byte <-> character map of byte-level BPE (GPT-2's bytes_to_unicode).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace onecard::text {

inline constexpr uint32_t kReplacementChar = 0xFFFD;

// The offset of the first byte that does not begin a well-formed UTF-8 sequence (overlong forms, surrogates
// and code points above U+10FFFF are ill-formed), or nullopt when all of `s` is valid.
std::optional<size_t> find_invalid_utf8(std::string_view s);

// How a sequence starting at s[pos] stands: a complete character of `length` bytes, an invalid byte (length
// 1), or a valid but truncated prefix that more bytes could complete (only possible at the end of `s`).
enum class Utf8Status { kComplete, kInvalid, kTruncated };
struct Utf8Sequence {
  Utf8Status status;
  size_t length;
  uint32_t code_point;  // for kComplete
};
Utf8Sequence next_utf8(std::string_view s, size_t pos);

// Appends the UTF-8 encoding of a code point (which must be a Unicode scalar value).
void append_utf8(std::string& out, uint32_t code_point);

// Copies `s`, replacing each invalid byte and truncated sequence with U+FFFD.
std::string sanitize_utf8(std::string_view s);

// Byte-level BPE stores each byte as one printable character: printable Latin-1 bytes as themselves, the
// others as U+0100 and up. Returns that character's UTF-8 text.
std::string_view byte_to_symbol(uint8_t byte);
// The byte a character stands for, or nullopt when it is not one of the 256 byte symbols.
std::optional<uint8_t> symbol_to_byte(uint32_t code_point);

}  // namespace onecard::text
