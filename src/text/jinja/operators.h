// Python's operators on template values (arithmetic, comparison, membership) and the conversions that
// filters and loops share. Errors are Python's TypeError / UndefinedError messages, without a location:
// the evaluator adds the line and column of the expression.
#pragma once

#include <string_view>
#include <vector>

#include "base/result.h"
#include "text/jinja/value.h"

namespace onecard::text::jinja {

// The message Jinja2 gives when an Undefined is used for anything but printing, testing or iterating.
Error undefined_error(const Value& v);

// + - * / // % ** and ~.
Result<Value> binary_op(std::string_view op, const Value& a, const Value& b);
Result<Value> unary_minus(const Value& v);
// == != < <= > >= in, not in.
Result<bool> compare(std::string_view op, const Value& a, const Value& b);
// Python's < ordering, for sort/min/max.
Result<bool> less_than(const Value& a, const Value& b);
Result<bool> contains(const Value& container, const Value& needle);

// The items a for loop visits: list items, dict keys, string characters; Undefined is empty.
Result<std::vector<Value>> iterate(const Value& v);
// len(); Undefined has length 0.
Result<int64_t> length(const Value& v);

}  // namespace onecard::text::jinja
