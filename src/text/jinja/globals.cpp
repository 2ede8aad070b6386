// The global functions of Hugging Face's chat template environment: Jinja2's range and dict, plus
// raise_exception and strftime_now. namespace() is the interpreter's, which tracks namespaces.
#include <ctime>

#include "text/jinja/args.h"
#include "text/jinja/builtins.h"
#include "text/jinja/format.h"

namespace onecard::text::jinja {
namespace {

// A range longer than this is refused: a template has no use for it and it would exhaust memory.
constexpr int64_t kMaxRange = 1 << 20;

Result<Value> g_range(CallArgs& args) {
  ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"start", "stop", "step"}, "range", 1));
  ONECARD_ASSIGN_OR_RETURN(int64_t first, arg_int(a[0], "range", "start", 0));
  int64_t start = 0;
  int64_t stop = first;
  if (a[1]) {
    start = first;
    ONECARD_ASSIGN_OR_RETURN(stop, arg_int(a[1], "range", "stop", 0));
  }
  ONECARD_ASSIGN_OR_RETURN(int64_t step, arg_int(a[2], "range", "step", 1));
  if (step == 0) return Error("range() arg 3 must not be zero");
  std::vector<Value> items;
  for (int64_t i = start; step > 0 ? i < stop : i > stop;) {
    if (static_cast<int64_t>(items.size()) >= kMaxRange) {
      return make_error("range() is limited to {} items in templates", kMaxRange);
    }
    items.emplace_back(i);
    if (__builtin_add_overflow(i, step, &i)) break;
  }
  return Value::array(std::move(items));
}

Result<Value> g_dict(CallArgs& args) {
  if (args.positional.size() > 1) return Error("dict expected at most 1 argument");
  Value out = Value::object();
  if (!args.positional.empty()) {
    const Value& src = args.positional[0];
    if (src.is_object() && !src.object_data().is_namespace) {
      out.object_data().items = src.object_data().items;
    } else if (src.is_array()) {
      for (const Value& pair : src.array_data().items) {
        if (!pair.is_array() || pair.array_data().items.size() != 2 ||
            !pair.array_data().items[0].is_string()) {
          return Error("dict(): each item must be a (string key, value) pair");
        }
        out.object_data().set(pair.array_data().items[0].as_string(), pair.array_data().items[1]);
      }
    } else {
      return make_error("dict(): cannot convert {} to a dict", type_name(src));
    }
  }
  for (const auto& [k, v] : args.named) out.object_data().set(k, v);
  return out;
}

Result<Value> g_raise_exception(CallArgs& args) {
  ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"message"}, "raise_exception", 1));
  ONECARD_ASSIGN_OR_RETURN(std::string msg, to_str(*a[0]));
  return Error(msg);
}

Result<Value> g_strftime_now(CallArgs& args) {
  ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"format"}, "strftime_now", 1));
  ONECARD_ASSIGN_OR_RETURN(std::string f, arg_string(a[0], "strftime_now", "format"));
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char buf[512];
  const size_t n = std::strftime(buf, sizeof buf, f.c_str(), &local);
  return Value(std::string(buf, n));
}

}  // namespace

Value make_globals() {
  Value g = Value::object();
  auto& items = g.object_data().items;
  items.emplace_back("range", Value::function("range", g_range));
  items.emplace_back("dict", Value::function("dict", g_dict));
  items.emplace_back("raise_exception", Value::function("raise_exception", g_raise_exception));
  items.emplace_back("strftime_now", Value::function("strftime_now", g_strftime_now));
  return g;
}

}  // namespace onecard::text::jinja
