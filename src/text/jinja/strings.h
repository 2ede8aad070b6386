// Python's str methods on UTF-8 text, shared by the methods templates call (s.strip()) and the filters
// (|trim, |upper). Case mapping covers ASCII, Latin-1, Greek and Cyrillic, which is what chat
// templates meet in practice; other scripts are left unchanged.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace onecard::text::jinja {

bool is_py_space(char32_t c);
char32_t to_upper(char32_t c);
char32_t to_lower(char32_t c);

// chars: nullopt strips whitespace.
std::string py_strip(const std::string& s, const std::optional<std::string>& chars, bool left, bool right);
std::string py_upper(const std::string& s);
std::string py_lower(const std::string& s);
std::string py_capitalize(const std::string& s);
std::string py_title(const std::string& s);
// sep nullopt: runs of whitespace; maxsplit < 0: no limit. from_right: rsplit.
std::vector<std::string> py_split(const std::string& s, const std::optional<std::string>& sep,
                                  int64_t maxsplit, bool from_right);
std::string py_replace(const std::string& s, const std::string& old, const std::string& with, int64_t count);
std::vector<std::string> py_splitlines(const std::string& s, bool keepends);

}  // namespace onecard::text::jinja
