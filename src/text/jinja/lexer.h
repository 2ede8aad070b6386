// Splits template source into tokens the way Jinja2's lexer does in Hugging Face's environment
// (trim_blocks and lstrip_blocks on, keep_trailing_newline off): text between tags, tag delimiters, and
// the expression tokens inside tags. Whitespace control ({%- -%} {%+ +%}) is applied here, so the
// parser sees the text exactly as it will be printed.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "base/result.h"

namespace onecard::text::jinja {

enum class TokenType {
  kText,        // literal template text
  kVarBegin,    // {{
  kVarEnd,      // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,
  kString,  // value already unescaped
  kInt,
  kFloat,
  kOperator,
  kEnd,  // end of the source
};

struct Token {
  TokenType type;
  std::string text;
  size_t offset;  // into the normalized source, for line and column in messages
};

struct LexerOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
};

// Jinja2 turns \r\n and \r into \n and drops one trailing newline before lexing; token offsets refer to
// this normalized text.
std::string normalize_source(const std::string& source, const LexerOptions& options);

// Fails with "line L, column C: <what>" on an unterminated tag, comment or string, or a stray character.
Result<std::vector<Token>> tokenize(const std::string& normalized, const LexerOptions& options);

// "line L, column C" (column in code points, both from 1) of a byte offset in `source`.
std::string describe_location(const std::string& source, size_t offset);

}  // namespace onecard::text::jinja
