// A compiled Jinja template, rendered as Jinja2 renders it in Hugging Face's chat template environment
// (ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, loop controls, tojson as json.dumps,
// raise_exception, strftime_now).
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "base/result.h"
#include "text/jinja/ast.h"
#include "text/jinja/value.h"

namespace onecard::text::jinja {

class Template {
 public:
  // A syntax error or an unsupported construct is an error naming it with its line and column.
  static Result<Template> parse(const std::string& source);

  // `context` is a dict of top-level variables. Runtime errors (undefined attribute access, type errors,
  // raise_exception) carry the line and column of the failing expression.
  Result<std::string> render(const Value& context) const;
  Result<std::string> render(const nlohmann::ordered_json& context) const;

 private:
  std::shared_ptr<const std::string> source_;  // normalized text, for error locations
  std::shared_ptr<const Body> body_;
};

}  // namespace onecard::text::jinja
