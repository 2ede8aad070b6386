// Builds the statement tree from tokens, following Jinja2's grammar and operator precedence. Errors
// name the construct and its line and column; nesting is bounded so that hostile input cannot exhaust
// the stack.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "text/jinja/ast.h"
#include "text/jinja/lexer.h"

namespace onecard::text::jinja {

// How deeply blocks and expressions may nest; real chat templates stay below 20.
inline constexpr int kMaxParseDepth = 128;

// `source` is the normalized text the tokens came from (for locations in messages).
Result<Body> parse(const std::vector<Token>& tokens, const std::string& source);

}  // namespace onecard::text::jinja
