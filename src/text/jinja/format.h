// Text forms of values exactly as Python writes them: str() (what {{ x }} prints), repr() (how a list or a
// dict prints its items) and json.dumps() (Hugging Face's tojson filter), including float formatting.
#pragma once

#include <optional>
#include <string>

#include "base/result.h"
#include "text/jinja/value.h"

namespace onecard::text::jinja {

// Python's repr(float): the shortest digits that round-trip, fixed notation for 1e-4 <= |x| < 1e16.
std::string format_float(double d);
// Python's repr(str): single quotes unless the text has a ' and no ".
std::string quote_string(const std::string& s);

Result<std::string> to_str(const Value& v);
Result<std::string> to_repr(const Value& v);

struct JsonOptions {
  bool ensure_ascii = false;          // HF's default, unlike json.dumps
  std::optional<std::string> indent;  // null: one line
  std::optional<std::pair<std::string, std::string>> separators;
  bool sort_keys = false;
};
Result<std::string> to_json_text(const Value& v, const JsonOptions& options);

}  // namespace onecard::text::jinja
