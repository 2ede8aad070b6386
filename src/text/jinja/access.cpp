#include "text/jinja/access.h"

#include <algorithm>
#include <array>
#include <string_view>

#include "text/jinja/args.h"
#include "text/jinja/format.h"
#include "text/jinja/operators.h"
#include "text/jinja/strings.h"
#include "text/jinja/utf8.h"

namespace onecard::text::jinja {
namespace {

// Jinja2's object_type_repr, used in its "has no attribute" messages.
std::string object_type(const Value& v) {
  if (v.is_none()) return "None";
  return std::string(type_name(v)) + " object";
}

Value missing_attr(const Value& obj, const std::string& name) {
  return Value::undefined(fmt::format("'{}' has no attribute '{}'", object_type(obj), name));
}

Value missing_element(const Value& obj, const Value& key) {
  auto r = to_repr(key);
  return Value::undefined(fmt::format("{} has no element {}", object_type(obj), r.ok() ? *r : "?"));
}

// Methods that modify their list or dict: the immutable sandbox denies them.
constexpr std::array<std::string_view, 13> kUnsafeMethods = {
    "append", "extend", "insert",     "pop",     "remove",      "reverse",    "sort",
    "clear",  "update", "setdefault", "popitem", "__setitem__", "__delitem__"};

Value unsafe(const Value& obj, const std::string& name) {
  return Value::undefined(
      fmt::format("access to attribute '{}' of '{}' object is unsafe.", name, type_name(obj)));
}

// A code point index of a byte offset in `s`.
int64_t cp_index(const std::string& s, size_t byte_offset) {
  return static_cast<int64_t>(utf8_length(std::string_view(s).substr(0, byte_offset)));
}

// Python's (start, end) arguments of find/count/startswith, resolved to a byte range of `s`.
Result<std::pair<size_t, size_t>> byte_range(const std::string& s, const std::optional<Value>& start,
                                             const std::optional<Value>& end, std::string_view callee) {
  const std::vector<char32_t> cps = utf8_decode(s);
  const auto n = static_cast<int64_t>(cps.size());
  ONECARD_ASSIGN_OR_RETURN(int64_t b, arg_int(start, callee, "start", 0));
  ONECARD_ASSIGN_OR_RETURN(int64_t e, arg_int(end, callee, "end", n));
  if (b < 0) b = std::max<int64_t>(0, b + n);
  if (e < 0) e = std::max<int64_t>(0, e + n);
  b = std::min(b, n);
  e = std::min(e, n);
  size_t bb = 0;
  size_t eb = 0;
  size_t pos = 0;
  for (int64_t i = 0; i <= n; ++i) {
    if (i == b) bb = pos;
    if (i == e) eb = pos;
    if (i < n) {
      std::string tmp;
      utf8_append(tmp, cps[static_cast<size_t>(i)]);
      pos += tmp.size();
    }
  }
  if (eb < bb) eb = bb;
  return std::make_pair(bb, eb);
}

Result<Value> affix_test(const std::string& s, const std::optional<Value>& affix, const BoundArgs& a,
                         std::string_view callee, bool prefix) {
  ONECARD_ASSIGN_OR_RETURN(auto range, byte_range(s, a[1], a[2], callee));
  const std::string_view view = std::string_view(s).substr(range.first, range.second - range.first);
  std::vector<Value> options;
  if (affix->is_array() && affix->array_data().tuple) {
    options = affix->array_data().items;
  } else {
    options.push_back(*affix);
  }
  for (const Value& o : options) {
    if (!o.is_string()) {
      return make_error("{} first arg must be str or a tuple of str, not {}", callee, type_name(o));
    }
    if (prefix ? view.starts_with(o.as_string()) : view.ends_with(o.as_string())) return Value(true);
  }
  return Value(false);
}

Result<std::optional<std::string>> opt_string(const std::optional<Value>& v, std::string_view callee,
                                              std::string_view param) {
  if (!v || v->is_none()) return std::optional<std::string>();
  ONECARD_ASSIGN_OR_RETURN(std::string s, arg_string(v, callee, param));
  return std::optional<std::string>(std::move(s));
}

Value string_list(std::vector<std::string> parts) {
  std::vector<Value> items;
  items.reserve(parts.size());
  for (auto& p : parts) items.emplace_back(std::move(p));
  return Value::array(std::move(items));
}

// str.format with automatic ({}), positional ({0}) and named ({name}) fields, without format specs.
Result<Value> str_format(const std::string& fmt_text, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt_text.size(); ++i) {
    const char c = fmt_text[i];
    if (c == '}') {
      if (i + 1 < fmt_text.size() && fmt_text[i + 1] == '}') ++i;
      out += '}';
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < fmt_text.size() && fmt_text[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    const size_t close = fmt_text.find('}', i);
    if (close == std::string::npos) return Error("Single '{' encountered in format string");
    const std::string field = fmt_text.substr(i + 1, close - i - 1);
    if (field.find_first_of(":!.[") != std::string::npos) {
      return Error("unsupported construct: str.format field with a conversion or format spec");
    }
    const Value* v = nullptr;
    if (field.empty() ||
        std::all_of(field.begin(), field.end(), [](char d) { return d >= '0' && d <= '9'; })) {
      if (field.size() > 9) return make_error("Replacement index {} out of range", field);
      const size_t idx = field.empty() ? auto_index++ : std::stoul(field);
      if (idx >= args.positional.size()) return make_error("Replacement index {} out of range", idx);
      v = &args.positional[idx];
    } else {
      for (const auto& [k, val] : args.named) {
        if (k == field) v = &val;
      }
      if (v == nullptr) return make_error("KeyError: '{}'", field);
    }
    ONECARD_ASSIGN_OR_RETURN(std::string s, to_str(*v));
    out += s;
    i = close;
  }
  return Value(std::move(out));
}

Result<Value> call_str_method(const std::string& s, const std::string& name, CallArgs& args) {
  const std::string callee = "str." + name;
  if (name == "startswith" || name == "endswith") {
    ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"affix", "start", "end"}, callee, 1));
    return affix_test(s, a[0], a, callee, name == "startswith");
  }
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"chars"}, callee));
    ONECARD_ASSIGN_OR_RETURN(auto chars, opt_string(a[0], callee, "chars"));
    return Value(py_strip(s, chars, name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"sep", "maxsplit"}, callee));
    ONECARD_ASSIGN_OR_RETURN(auto sep, opt_string(a[0], callee, "sep"));
    if (sep && sep->empty()) return Error("ValueError: empty separator");
    ONECARD_ASSIGN_OR_RETURN(int64_t maxsplit, arg_int(a[1], callee, "maxsplit", -1));
    return string_list(py_split(s, sep, maxsplit, name == "rsplit"));
  }
  if (name == "splitlines") {
    ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"keepends"}, callee));
    return string_list(py_splitlines(s, arg_bool(a[0], false)));
  }
  if (name == "replace") {
    ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"old", "new", "count"}, callee, 2));
    ONECARD_ASSIGN_OR_RETURN(std::string old, arg_string(a[0], callee, "old"));
    ONECARD_ASSIGN_OR_RETURN(std::string with, arg_string(a[1], callee, "new"));
    ONECARD_ASSIGN_OR_RETURN(int64_t count, arg_int(a[2], callee, "count", -1));
    return Value(py_replace(s, old, with, count));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"sub", "start", "end"}, callee, 1));
    ONECARD_ASSIGN_OR_RETURN(std::string sub, arg_string(a[0], callee, "sub"));
    ONECARD_ASSIGN_OR_RETURN(auto range, byte_range(s, a[1], a[2], callee));
    const std::string_view view = std::string_view(s).substr(range.first, range.second - range.first);
    if (name == "count") {
      if (sub.empty()) return Value(static_cast<int64_t>(utf8_length(view) + 1));
      int64_t n = 0;
      for (size_t at = view.find(sub); at != std::string_view::npos; at = view.find(sub, at + sub.size()))
        ++n;
      return Value(n);
    }
    const size_t at = (name == "find" || name == "index") ? view.find(sub) : view.rfind(sub);
    if (at == std::string_view::npos) {
      if (name == "index" || name == "rindex") return Error("ValueError: substring not found");
      return Value(int64_t{-1});
    }
    return Value(cp_index(s, range.first + at));
  }
  if (name == "join") {
    ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"iterable"}, callee, 1));
    ONECARD_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(*a[0]));
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].is_string()) {
        return make_error("sequence item {}: expected str instance, {} found", i, type_name(items[i]));
      }
      if (i > 0) out += s;
      out += items[i].as_string();
    }
    return Value(std::move(out));
  }
  if (name == "format") return str_format(s, args);
  // The remaining methods take no arguments.
  ONECARD_TRY(bind_args(args, {}, callee));
  if (name == "upper") return Value(py_upper(s));
  if (name == "lower") return Value(py_lower(s));
  if (name == "title") return Value(py_title(s));
  if (name == "capitalize") return Value(py_capitalize(s));
  const std::vector<char32_t> cps = utf8_decode(s);
  auto all = [&](auto pred) { return !cps.empty() && std::all_of(cps.begin(), cps.end(), pred); };
  auto ascii_digit = [](char32_t c) { return c >= '0' && c <= '9'; };
  auto alpha = [](char32_t c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c > 0x7F && to_upper(c) != to_lower(c));
  };
  if (name == "isdigit" || name == "isnumeric" || name == "isdecimal") return Value(all(ascii_digit));
  if (name == "isalpha") return Value(all(alpha));
  if (name == "isalnum") return Value(all([&](char32_t c) { return ascii_digit(c) || alpha(c); }));
  if (name == "isspace") return Value(all(is_py_space));
  if (name == "islower") return Value(py_lower(s) == s && py_upper(s) != s);
  if (name == "isupper") return Value(py_upper(s) == s && py_lower(s) != s);
  return make_error("unknown method str.{}", name);
}

constexpr std::array<std::string_view, 23> kStrMethods = {
    "startswith", "endswith", "strip", "lstrip",     "rstrip",  "split",   "rsplit", "splitlines",
    "replace",    "find",     "rfind", "index",      "rindex",  "count",   "join",   "format",
    "upper",      "lower",    "title", "capitalize", "isdigit", "isalpha", "isspace"};
constexpr std::array<std::string_view, 6> kMoreStrMethods = {"isalnum",   "islower",   "isupper",
                                                             "isnumeric", "isdecimal", "format"};

bool is_str_method(const std::string& name) {
  return std::find(kStrMethods.begin(), kStrMethods.end(), name) != kStrMethods.end() ||
         std::find(kMoreStrMethods.begin(), kMoreStrMethods.end(), name) != kMoreStrMethods.end();
}

Result<Value> call_dict_method(const Value& obj, const std::string& name, CallArgs& args) {
  const std::string callee = "dict." + name;
  const ObjectData& d = obj.object_data();
  if (name == "get") {
    ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"key", "default"}, callee, 1));
    if (a[0]->is_string()) {
      if (const Value* v = d.find(a[0]->as_string())) return *v;
    }
    return a[1] ? *a[1] : Value(nullptr);
  }
  ONECARD_TRY(bind_args(args, {}, callee));
  std::vector<Value> out;
  for (const auto& [k, v] : d.items) {
    if (name == "items") {
      out.push_back(Value::array({Value(k), v}, true));
    } else if (name == "keys") {
      out.emplace_back(k);
    } else {
      out.push_back(v);
    }
  }
  return Value::array(std::move(out));
}

Result<Value> call_list_method(const Value& obj, const std::string& name, CallArgs& args) {
  const std::string callee = "list." + name;
  ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"value"}, callee, 1));
  const auto& items = obj.array_data().items;
  int64_t count = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!equals(items[i], *a[0])) continue;
    if (name == "index") return Value(static_cast<int64_t>(i));
    ++count;
  }
  if (name == "index") return Error("ValueError: value is not in list");
  return Value(count);
}

Value bound(const Value& obj, const std::string& name,
            Result<Value> (*method)(const Value&, const std::string&, CallArgs&)) {
  return Value::function(name, [obj, name, method](CallArgs& args) { return method(obj, name, args); });
}

Result<Value> str_method_thunk(const Value& obj, const std::string& name, CallArgs& args) {
  return call_str_method(obj.as_string(), name, args);
}

// Python's slice.indices(): clamps start/stop for a sequence of length n.
Result<std::vector<int64_t>> slice_indices(int64_t n, const Value& start, const Value& stop,
                                           const Value& step) {
  auto read = [](const Value& v, int64_t fallback) -> Result<int64_t> {
    if (v.is_undefined() || v.is_none()) return fallback;
    if (!v.is_number() || v.is_float()) {
      return make_error("slice indices must be integers or None, not {}", type_name(v));
    }
    return v.as_int();
  };
  ONECARD_ASSIGN_OR_RETURN(int64_t st, read(step, 1));
  if (st == 0) return Error("ValueError: slice step cannot be zero");
  const int64_t lo = st < 0 ? -1 : 0;
  const int64_t hi = st < 0 ? n - 1 : n;
  auto clamp = [&](int64_t i) {
    if (i < 0) i += n;
    return std::clamp(i, lo, hi);
  };
  ONECARD_ASSIGN_OR_RETURN(int64_t b, read(start, st < 0 ? hi : lo));
  ONECARD_ASSIGN_OR_RETURN(int64_t e, read(stop, st < 0 ? lo : hi));
  if (!start.is_undefined() && !start.is_none()) b = clamp(b);
  if (!stop.is_undefined() && !stop.is_none()) e = clamp(e);
  std::vector<int64_t> idx;
  for (int64_t i = b; st > 0 ? i < e : i > e; i += st) idx.push_back(i);
  return idx;
}

}  // namespace

Result<Value> get_attr(const Value& obj, const std::string& name) {
  switch (obj.kind()) {
    case Value::Kind::Undefined:
      return undefined_error(obj);
    case Value::Kind::Object: {
      const ObjectData& d = obj.object_data();
      if (!d.is_namespace) {
        if (name == "get" || name == "items" || name == "keys" || name == "values") {
          return bound(obj, name, call_dict_method);
        }
        if (std::find(kUnsafeMethods.begin(), kUnsafeMethods.end(), name) != kUnsafeMethods.end()) {
          return unsafe(obj, name);
        }
      }
      if (const Value* v = d.find(name)) return *v;
      return missing_attr(obj, name);
    }
    case Value::Kind::String:
      if (is_str_method(name)) return bound(obj, name, str_method_thunk);
      return missing_attr(obj, name);
    case Value::Kind::Array:
      if (name == "index" || name == "count") return bound(obj, name, call_list_method);
      if (std::find(kUnsafeMethods.begin(), kUnsafeMethods.end(), name) != kUnsafeMethods.end()) {
        return unsafe(obj, name);
      }
      return missing_attr(obj, name);
    default:
      return missing_attr(obj, name);
  }
}

Result<Value> get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) return undefined_error(obj);
  const bool int_key = key.is_number() && !key.is_float();
  if ((obj.is_array() || obj.is_string()) && int_key) {
    const bool str = obj.is_string();
    const std::vector<char32_t> cps = str ? utf8_decode(obj.as_string()) : std::vector<char32_t>();
    const auto n = static_cast<int64_t>(str ? cps.size() : obj.array_data().items.size());
    int64_t i = key.as_int();
    if (i < 0) i += n;
    if (i < 0 || i >= n) return missing_element(obj, key);
    if (!str) return obj.array_data().items[static_cast<size_t>(i)];
    std::string out;
    utf8_append(out, cps[static_cast<size_t>(i)]);
    return Value(std::move(out));
  }
  if (obj.is_object() && key.is_string()) {
    if (const Value* v = obj.object_data().find(key.as_string())) return *v;
  }
  // As Jinja2's sandbox: a failed subscript with a string key tries the attribute.
  if (key.is_string()) return get_attr(obj, key.as_string());
  return missing_element(obj, key);
}

Result<Value> get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (obj.is_undefined()) return undefined_error(obj);
  if (obj.is_string()) {
    const std::vector<char32_t> cps = utf8_decode(obj.as_string());
    ONECARD_ASSIGN_OR_RETURN(auto idx, slice_indices(static_cast<int64_t>(cps.size()), start, stop, step));
    std::string out;
    for (int64_t i : idx) utf8_append(out, cps[static_cast<size_t>(i)]);
    return Value(std::move(out));
  }
  if (obj.is_array()) {
    const auto& items = obj.array_data().items;
    ONECARD_ASSIGN_OR_RETURN(auto idx, slice_indices(static_cast<int64_t>(items.size()), start, stop, step));
    std::vector<Value> out;
    for (int64_t i : idx) out.push_back(items[static_cast<size_t>(i)]);
    return Value::array(std::move(out), obj.array_data().tuple);
  }
  // Jinja2's sandbox turns a failed subscript into an Undefined.
  return Value::undefined(fmt::format("{} has no element slice", object_type(obj)));
}

}  // namespace onecard::text::jinja
