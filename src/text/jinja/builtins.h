// The filters, tests and global functions of the environment: Jinja2's builtins that chat templates
// use, plus Hugging Face's additions (raise_exception, strftime_now, tojson with json.dumps options) and
// from_json, which some DeepSeek templates call.
#pragma once

#include <string_view>

#include "base/result.h"
#include "text/jinja/value.h"

namespace onecard::text::jinja {

bool has_filter(std::string_view name);
bool has_test(std::string_view name);

Result<Value> apply_filter(std::string_view name, const Value& input, CallArgs& args);
Result<bool> apply_test(std::string_view name, const Value& input, CallArgs& args);

// range, namespace, dict, raise_exception, strftime_now, joiner, cycler.
Value make_globals();

}  // namespace onecard::text::jinja
