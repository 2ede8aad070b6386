#include "text/jinja/strings.h"

#include <algorithm>

#include "text/jinja/utf8.h"

namespace onecard::text::jinja {

bool is_py_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

char32_t to_upper(char32_t c) {
  if (c >= 'a' && c <= 'z') return c - 32;
  if ((c >= 0xE0 && c <= 0xFE && c != 0xF7)) return c - 32;
  if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2) return c - 32;
  if (c >= 0x430 && c <= 0x44F) return c - 32;
  if (c >= 0x450 && c <= 0x45F) return c - 80;
  return c;
}

char32_t to_lower(char32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if ((c >= 0xC0 && c <= 0xDE && c != 0xD7)) return c + 32;
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
  if (c >= 0x410 && c <= 0x42F) return c + 32;
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  return c;
}

namespace {

bool is_cased_letter(char32_t c) {
  return to_upper(c) != c || to_lower(c) != c;
}

std::string map_chars(const std::string& s, char32_t (*f)(char32_t)) {
  std::vector<char32_t> cps = utf8_decode(s);
  for (char32_t& c : cps) c = f(c);
  return utf8_encode(cps);
}

}  // namespace

std::string py_strip(const std::string& s, const std::optional<std::string>& chars, bool left, bool right) {
  const std::vector<char32_t> cps = utf8_decode(s);
  std::vector<char32_t> set;
  if (chars) set = utf8_decode(*chars);
  auto strip_this = [&](char32_t c) {
    return chars ? std::find(set.begin(), set.end(), c) != set.end() : is_py_space(c);
  };
  size_t b = 0;
  size_t e = cps.size();
  if (left) {
    while (b < e && strip_this(cps[b])) ++b;
  }
  if (right) {
    while (e > b && strip_this(cps[e - 1])) --e;
  }
  return utf8_encode(std::vector<char32_t>(cps.begin() + static_cast<std::ptrdiff_t>(b),
                                           cps.begin() + static_cast<std::ptrdiff_t>(e)));
}

std::string py_upper(const std::string& s) {
  return map_chars(s, to_upper);
}

std::string py_lower(const std::string& s) {
  return map_chars(s, to_lower);
}

std::string py_capitalize(const std::string& s) {
  std::vector<char32_t> cps = utf8_decode(s);
  for (size_t i = 0; i < cps.size(); ++i) cps[i] = i == 0 ? to_upper(cps[i]) : to_lower(cps[i]);
  return utf8_encode(cps);
}

std::string py_title(const std::string& s) {
  std::vector<char32_t> cps = utf8_decode(s);
  bool prev_cased = false;
  for (char32_t& c : cps) {
    c = prev_cased ? to_lower(c) : to_upper(c);
    prev_cased = is_cased_letter(c);
  }
  return utf8_encode(cps);
}

std::vector<std::string> py_split(const std::string& s, const std::optional<std::string>& sep,
                                  int64_t maxsplit, bool from_right) {
  std::vector<std::string> parts;
  if (sep) {
    if (!from_right) {
      size_t start = 0;
      while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
        const size_t at = s.find(*sep, start);
        if (at == std::string::npos) break;
        parts.push_back(s.substr(start, at - start));
        start = at + sep->size();
      }
      parts.push_back(s.substr(start));
      return parts;
    }
    size_t end = s.size();
    while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
      if (end < sep->size()) break;
      const size_t at = s.rfind(*sep, end - sep->size());
      if (at == std::string::npos) break;
      parts.push_back(s.substr(at + sep->size(), end - at - sep->size()));
      end = at;
    }
    parts.push_back(s.substr(0, end));
    std::reverse(parts.begin(), parts.end());
    return parts;
  }
  // Whitespace splitting drops empty pieces; the unsplit rest keeps its inner spacing.
  const std::vector<char32_t> cps = utf8_decode(s);
  std::vector<std::pair<size_t, size_t>> words;  // [begin, end) in code points
  if (!from_right) {
    size_t i = 0;
    while (i < cps.size()) {
      while (i < cps.size() && is_py_space(cps[i])) ++i;
      if (i == cps.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(words.size()) == maxsplit) {
        size_t e = cps.size();
        while (e > i && is_py_space(cps[e - 1])) --e;
        words.emplace_back(i, e);
        break;
      }
      const size_t b = i;
      while (i < cps.size() && !is_py_space(cps[i])) ++i;
      words.emplace_back(b, i);
    }
  } else {
    size_t i = cps.size();
    while (i > 0) {
      while (i > 0 && is_py_space(cps[i - 1])) --i;
      if (i == 0) break;
      if (maxsplit >= 0 && static_cast<int64_t>(words.size()) == maxsplit) {
        size_t b = 0;
        while (b < i && is_py_space(cps[b])) ++b;
        words.emplace_back(b, i);
        break;
      }
      const size_t e = i;
      while (i > 0 && !is_py_space(cps[i - 1])) --i;
      words.emplace_back(i, e);
    }
    std::reverse(words.begin(), words.end());
  }
  for (auto [b, e] : words) {
    parts.push_back(utf8_encode(std::vector<char32_t>(cps.begin() + static_cast<std::ptrdiff_t>(b),
                                                      cps.begin() + static_cast<std::ptrdiff_t>(e))));
  }
  return parts;
}

std::string py_replace(const std::string& s, const std::string& old, const std::string& with, int64_t count) {
  std::string out;
  int64_t done = 0;
  if (old.empty()) {
    // Python inserts `with` before every character and at the end.
    const std::vector<char32_t> cps = utf8_decode(s);
    for (char32_t c : cps) {
      if (count < 0 || done < count) {
        out += with;
        ++done;
      }
      utf8_append(out, c);
    }
    if (count < 0 || done < count) out += with;
    return out;
  }
  size_t start = 0;
  while (count < 0 || done < count) {
    const size_t at = s.find(old, start);
    if (at == std::string::npos) break;
    out.append(s, start, at - start);
    out += with;
    start = at + old.size();
    ++done;
  }
  out.append(s, start, std::string::npos);
  return out;
}

std::vector<std::string> py_splitlines(const std::string& s, bool keepends) {
  std::vector<std::string> lines;
  size_t start = 0;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '\n' || s[i] == '\r') {
      size_t end = i + 1;
      if (s[i] == '\r' && end < s.size() && s[end] == '\n') ++end;
      lines.push_back(s.substr(start, (keepends ? end : i) - start));
      start = i = end;
    } else {
      ++i;
    }
  }
  if (start < s.size()) lines.push_back(s.substr(start));
  return lines;
}

}  // namespace onecard::text::jinja
