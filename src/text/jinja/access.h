// Attribute access (x.y), subscripts (x[y], x[a:b:c]) and the methods of str, dict and list, with the
// rules of Jinja2's immutable sandbox: x.y prefers a method and falls back to the item, x[y] prefers the
// item; a missing one is an Undefined carrying Jinja2's message; methods that would modify a list or a
// dict are refused.
#pragma once

#include <string>

#include "base/result.h"
#include "text/jinja/value.h"

namespace onecard::text::jinja {

Result<Value> get_attr(const Value& obj, const std::string& name);
Result<Value> get_item(const Value& obj, const Value& key);
// Absent bounds are nullopt-like Undefined values.
Result<Value> get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

}  // namespace onecard::text::jinja
