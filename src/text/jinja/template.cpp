#include "text/jinja/template.h"

#include <nlohmann/json.hpp>

#include "text/jinja/interpreter.h"
#include "text/jinja/lexer.h"
#include "text/jinja/parser.h"

namespace onecard::text::jinja {

Result<Template> Template::parse(const std::string& source) {
  const LexerOptions options;  // Hugging Face's: trim_blocks, lstrip_blocks, no trailing newline
  Template t;
  auto src = std::make_shared<std::string>(normalize_source(source, options));
  ONECARD_ASSIGN_OR_RETURN(std::vector<Token> tokens, tokenize(*src, options));
  ONECARD_ASSIGN_OR_RETURN(Body body, jinja::parse(tokens, *src));
  t.source_ = std::move(src);
  t.body_ = std::make_shared<const Body>(std::move(body));
  return t;
}

Result<std::string> Template::render(const Value& context) const {
  Interpreter interpreter(*source_);
  return interpreter.render(*body_, context);
}

Result<std::string> Template::render(const nlohmann::ordered_json& context) const {
  ONECARD_ASSIGN_OR_RETURN(Value v, from_json(context));
  return render(v);
}

}  // namespace onecard::text::jinja
