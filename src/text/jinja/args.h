// Binds the arguments of a call to a builtin (filter, test, method, global) to its parameter names, as
// Python does: positional first, then by keyword; too many or unknown ones are errors naming the builtin.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "text/jinja/value.h"

namespace onecard::text::jinja {

using BoundArgs = std::vector<std::optional<Value>>;  // nullopt: not passed

Result<BoundArgs> bind_args(const CallArgs& args, std::initializer_list<std::string_view> params,
                            std::string_view callee, size_t required = 0);

// Typed reads of one bound argument, with the builtin's name in messages.
Result<std::string> arg_string(const std::optional<Value>& v, std::string_view callee, std::string_view param,
                               std::string fallback = "");
Result<int64_t> arg_int(const std::optional<Value>& v, std::string_view callee, std::string_view param,
                        int64_t fallback);
bool arg_bool(const std::optional<Value>& v, bool fallback);

}  // namespace onecard::text::jinja
