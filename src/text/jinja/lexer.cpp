#include "text/jinja/lexer.h"

#include <array>
#include <cctype>
#include <string_view>

#include "text/jinja/utf8.h"

namespace onecard::text::jinja {

std::string normalize_source(const std::string& source, const LexerOptions& options) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!options.keep_trailing_newline && !out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string describe_location(const std::string& source, size_t offset) {
  if (offset > source.size()) offset = source.size();
  size_t line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < offset; ++i) {
    if (source[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  const size_t column = utf8_length(std::string_view(source).substr(line_start, offset - line_start)) + 1;
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_name_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool is_name_char(char c) {
  return is_name_start(c) || is_digit(c);
}

// Operators, longest first so that "//" wins over "/".
constexpr std::array<std::string_view, 24> kOperators = {"//", "**", "==", "!=", ">=", "<=", "+", "-",
                                                         "/",  "*",  "%",  "~",  "[",  "]",  "(", ")",
                                                         "{",  "}",  "=",  ".",  ":",  "|",  ",", ";"};

class Lexer {
 public:
  Lexer(const std::string& src, const LexerOptions& options) : src_(src), opt_(options) {}

  Result<std::vector<Token>> run() {
    while (pos_ < src_.size()) {
      const size_t tag = find_tag(pos_);
      if (tag == std::string::npos) {
        emit(TokenType::kText, src_.substr(pos_), pos_);
        pos_ = src_.size();
        break;
      }
      ONECARD_TRY(lex_tag(tag));
    }
    tokens_.push_back({TokenType::kEnd, "", src_.size()});
    return std::move(tokens_);
  }

 private:
  Error error_at(size_t offset, const std::string& what) const {
    return make_error("{}: {}", describe_location(src_, offset), what);
  }

  size_t find_tag(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string::npos; i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return std::string::npos;
  }

  void emit(TokenType type, std::string text, size_t offset) {
    if (type == TokenType::kText && text.empty()) return;
    tokens_.push_back({type, std::move(text), offset});
  }

  // The text before a tag, with the tag's whitespace control applied (Jinja2's OptionalLStrip).
  std::string strip_before(std::string text, char sign, bool is_variable) const {
    if (sign == '-') {
      size_t end = text.size();
      while (end > 0 && is_space(text[end - 1])) --end;
      text.resize(end);
    } else if (sign != '+' && opt_.lstrip_blocks && !is_variable) {
      const size_t nl = text.rfind('\n');
      const size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
      if (l_pos > 0 || line_starting_) {
        bool blank = l_pos < text.size();
        for (size_t i = l_pos; i < text.size(); ++i) {
          if (!is_space(text[i])) blank = false;
        }
        if (blank) text.resize(l_pos);
      }
    }
    return text;
  }

  // After a closing delimiter: "-" eats all following whitespace, "+" nothing, and a plain block or
  // comment end eats one newline when trim_blocks is on.
  void skip_after_end(char sign, bool trims) {
    if (sign == '-') {
      while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
    } else if (sign != '+' && trims && opt_.trim_blocks && pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;
    }
    line_starting_ = pos_ > 0 && src_[pos_ - 1] == '\n';
  }

  static char sign_at(const std::string& s, size_t i) {
    return i < s.size() && (s[i] == '-' || s[i] == '+') ? s[i] : '\0';
  }

  // `{%[-+]? raw [-]?%}` at `tag`: returns the offset after it, or npos.
  size_t match_raw_begin(size_t tag) const {
    size_t i = tag + 2;
    if (sign_at(src_, i) != '\0') ++i;
    while (i < src_.size() && is_space(src_[i])) ++i;
    if (src_.compare(i, 3, "raw") != 0) return std::string::npos;
    i += 3;
    if (i < src_.size() && is_name_char(src_[i])) return std::string::npos;
    while (i < src_.size() && is_space(src_[i])) ++i;
    if (src_.compare(i, 3, "-%}") == 0) {
      i += 3;
      while (i < src_.size() && is_space(src_[i])) ++i;
      return i;
    }
    if (src_.compare(i, 2, "%}") == 0) return i + 2;
    return std::string::npos;
  }

  Status lex_tag(size_t tag) {
    const char kind = src_[tag + 1];
    const char sign = sign_at(src_, tag + 2);
    std::string before = strip_before(src_.substr(pos_, tag - pos_), sign, kind == '{');
    emit(TokenType::kText, std::move(before), pos_);
    if (kind == '#') return lex_comment(tag, sign);
    if (kind == '%') {
      const size_t raw_end = match_raw_begin(tag);
      if (raw_end != std::string::npos) return lex_raw(tag, raw_end);
    }
    pos_ = tag + 2 + (sign != '\0' ? 1 : 0);
    emit(kind == '{' ? TokenType::kVarBegin : TokenType::kBlockBegin, "", tag);
    return lex_inside(kind == '{', tag);
  }

  Status lex_comment(size_t tag, char /*sign*/) {
    const size_t body = tag + 2 + (sign_at(src_, tag + 2) != '\0' ? 1 : 0);
    const size_t close = src_.find("#}", body);
    if (close == std::string::npos) return error_at(tag, "missing end of comment tag '#}'");
    const char end_sign = close > body ? sign_at(src_, close - 1) : '\0';
    pos_ = close + 2;
    skip_after_end(end_sign, true);
    return {};
  }

  Status lex_raw(size_t tag, size_t body) {
    // The first {% endraw %} (with optional whitespace control) ends the raw text.
    for (size_t i = src_.find("{%", body); i != std::string::npos; i = src_.find("{%", i + 1)) {
      size_t j = i + 2;
      const char open_sign = sign_at(src_, j);
      if (open_sign != '\0') ++j;
      while (j < src_.size() && is_space(src_[j])) ++j;
      if (src_.compare(j, 6, "endraw") != 0) continue;
      j += 6;
      while (j < src_.size() && is_space(src_[j])) ++j;
      const char close_sign = sign_at(src_, j);
      if (close_sign != '\0') ++j;
      if (src_.compare(j, 2, "%}") != 0) continue;
      line_starting_ = false;
      emit(TokenType::kText, strip_before(src_.substr(body, i - body), open_sign, false), body);
      pos_ = j + 2;
      skip_after_end(close_sign, true);
      return {};
    }
    return error_at(tag, "missing end of raw directive '{% endraw %}'");
  }

  Status lex_inside(bool variable, size_t tag) {
    line_starting_ = false;
    std::vector<char> brackets;  // delimiters count as the end only outside ( [ {
    while (true) {
      while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
      if (pos_ >= src_.size()) {
        return error_at(tag, variable ? "unexpected end of template: '{{' is never closed by '}}'"
                                      : "unexpected end of template: '{%' is never closed by '%}'");
      }
      if (brackets.empty()) {
        const char sign = sign_at(src_, pos_);
        const size_t at = pos_ + (sign != '\0' ? 1 : 0);
        const bool plus_ok = !variable;  // "+}}" is not an end in Jinja2
        if ((sign != '+' || plus_ok) && src_.compare(at, 2, variable ? "}}" : "%}") == 0) {
          emit(variable ? TokenType::kVarEnd : TokenType::kBlockEnd, "", pos_);
          pos_ = at + 2;
          skip_after_end(sign, !variable);
          return {};
        }
      }
      ONECARD_TRY(lex_expression_token(brackets));
    }
  }

  Status lex_expression_token(std::vector<char>& brackets) {
    const size_t start = pos_;
    const char c = src_[pos_];
    if (is_digit(c)) return lex_number();
    if (is_name_start(c)) {
      while (pos_ < src_.size() && is_name_char(src_[pos_])) ++pos_;
      emit(TokenType::kName, src_.substr(start, pos_ - start), start);
      return {};
    }
    if (c == '\'' || c == '"') return lex_string();
    for (std::string_view op : kOperators) {
      if (src_.compare(pos_, op.size(), op) != 0) continue;
      if (op == "(" || op == "[" || op == "{") {
        brackets.push_back(op[0] == '(' ? ')' : op[0] == '[' ? ']' : '}');
      } else if (op == ")" || op == "]" || op == "}") {
        if (brackets.empty()) return error_at(start, fmt::format("unexpected '{}'", op));
        if (brackets.back() != op[0]) {
          return error_at(start, fmt::format("unexpected '{}', expected '{}'", op, brackets.back()));
        }
        brackets.pop_back();
      }
      pos_ += op.size();
      emit(TokenType::kOperator, std::string(op), start);
      return {};
    }
    if (c == '<' || c == '>') {
      ++pos_;
      emit(TokenType::kOperator, std::string(1, c), start);
      return {};
    }
    return error_at(start, fmt::format("unexpected character '{}' in an expression",
                                       utf8_encode({utf8_decode(src_.substr(start, 4)).front()})));
  }

  void skip_digits() {
    // Jinja2 allows "_" between digits, as Python does.
    while (pos_ < src_.size() && (is_digit(src_[pos_]) || (src_[pos_] == '_' && pos_ + 1 < src_.size() &&
                                                           is_digit(src_[pos_ + 1])))) {
      ++pos_;
    }
  }

  Status lex_number() {
    const size_t start = pos_;
    skip_digits();
    bool is_float = false;
    if (pos_ + 1 < src_.size() && src_[pos_] == '.' && is_digit(src_[pos_ + 1])) {
      is_float = true;
      ++pos_;
      skip_digits();
    }
    if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      size_t j = pos_ + 1;
      if (j < src_.size() && (src_[j] == '+' || src_[j] == '-')) ++j;
      if (j < src_.size() && is_digit(src_[j])) {
        is_float = true;
        pos_ = j;
        skip_digits();
      }
    }
    std::string text;
    for (size_t i = start; i < pos_; ++i) {
      if (src_[i] != '_') text += src_[i];
    }
    emit(is_float ? TokenType::kFloat : TokenType::kInt, std::move(text), start);
    return {};
  }

  static int hex_value(char c) {
    if (is_digit(c)) return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  // Python's unicode-escape decoding, which Jinja2 applies to string literals; an unknown escape keeps
  // its backslash.
  Status lex_string() {
    const size_t start = pos_;
    const char quote = src_[pos_++];
    std::string out;
    while (true) {
      if (pos_ >= src_.size()) return error_at(start, "unterminated string literal");
      const char c = src_[pos_++];
      if (c == quote) break;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= src_.size()) return error_at(start, "unterminated string literal");
      const char e = src_[pos_++];
      switch (e) {
        case '\n':
          break;
        case '\\':
          out += '\\';
          break;
        case '\'':
          out += '\'';
          break;
        case '"':
          out += '"';
          break;
        case 'a':
          out += '\a';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'v':
          out += '\v';
          break;
        case 'x':
        case 'u':
        case 'U': {
          const int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          char32_t cp = 0;
          for (int k = 0; k < digits; ++k) {
            const int h = pos_ < src_.size() ? hex_value(src_[pos_]) : -1;
            if (h < 0) return error_at(pos_, fmt::format("truncated \\{} escape in a string literal", e));
            cp = cp * 16 + static_cast<char32_t>(h);
            ++pos_;
          }
          if (cp > 0x10FFFF) return error_at(start, "a \\U escape beyond U+10FFFF");
          utf8_append(out, cp);
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            char32_t cp = static_cast<char32_t>(e - '0');
            for (int k = 0; k < 2 && pos_ < src_.size() && src_[pos_] >= '0' && src_[pos_] <= '7'; ++k) {
              cp = cp * 8 + static_cast<char32_t>(src_[pos_++] - '0');
            }
            utf8_append(out, cp);
          } else {
            out += '\\';
            out += e;
          }
      }
    }
    emit(TokenType::kString, std::move(out), start);
    return {};
  }

  const std::string& src_;
  const LexerOptions& opt_;
  size_t pos_ = 0;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

}  // namespace

Result<std::vector<Token>> tokenize(const std::string& normalized, const LexerOptions& options) {
  return Lexer(normalized, options).run();
}

}  // namespace onecard::text::jinja
