#include "text/jinja/args.h"

namespace onecard::text::jinja {

Result<BoundArgs> bind_args(const CallArgs& args, std::initializer_list<std::string_view> params,
                            std::string_view callee, size_t required) {
  BoundArgs out(params.size());
  if (args.positional.size() > params.size()) {
    return make_error("{}() takes at most {} argument(s) ({} given)", callee, params.size(),
                      args.positional.size());
  }
  for (size_t i = 0; i < args.positional.size(); ++i) out[i] = args.positional[i];
  for (const auto& [name, value] : args.named) {
    size_t i = 0;
    for (std::string_view p : params) {
      if (p == name) break;
      ++i;
    }
    if (i == params.size()) return make_error("{}() got an unexpected keyword argument '{}'", callee, name);
    if (out[i]) return make_error("{}() got multiple values for argument '{}'", callee, name);
    out[i] = value;
  }
  for (size_t i = 0; i < required; ++i) {
    if (!out[i]) return make_error("{}() missing required argument '{}'", callee, *(params.begin() + i));
  }
  return out;
}

Result<std::string> arg_string(const std::optional<Value>& v, std::string_view callee, std::string_view param,
                               std::string fallback) {
  if (!v || v->is_none()) return fallback;
  if (!v->is_string()) return make_error("{}(): '{}' must be a string, not {}", callee, param, type_name(*v));
  return v->as_string();
}

Result<int64_t> arg_int(const std::optional<Value>& v, std::string_view callee, std::string_view param,
                        int64_t fallback) {
  if (!v || v->is_none()) return fallback;
  if (!v->is_number() || v->is_float()) {
    return make_error("{}(): '{}' must be an integer, not {}", callee, param, type_name(*v));
  }
  return v->as_int();
}

bool arg_bool(const std::optional<Value>& v, bool fallback) {
  return v ? truthy(*v) : fallback;
}

}  // namespace onecard::text::jinja
