// Jinja2's builtin filters that chat templates use, with Hugging Face's tojson and a from_json extension.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

#include "text/jinja/access.h"
#include "text/jinja/args.h"
#include "text/jinja/builtins.h"
#include "text/jinja/format.h"
#include "text/jinja/operators.h"
#include "text/jinja/strings.h"
#include "text/jinja/utf8.h"

namespace onecard::text::jinja {
namespace {

using FilterFn = Result<Value> (*)(const Value& input, CallArgs& args);

// Jinja2's make_attrgetter: "a.b.0" subscripts step by step, digits as list indices.
Result<Value> attr_path(const Value& v, const std::string& path) {
  Value cur = v;
  for (const std::string& part : py_split(path, std::string("."), -1, false)) {
    const bool digits =
        !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    ONECARD_ASSIGN_OR_RETURN(
        cur, get_item(cur, digits ? Value(static_cast<int64_t>(std::atoll(part.c_str()))) : Value(part)));
  }
  return cur;
}

// A float truncated toward zero, when it fits in 64 bits (converting one that does not is undefined).
std::optional<int64_t> truncate(double d) {
  if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return std::nullopt;
  return static_cast<int64_t>(std::trunc(d));
}

// Widths of center/indent beyond this only exhaust memory.
constexpr int64_t kMaxWidth = int64_t{1} << 20;

Result<std::string> str_of(const Value& v) {
  return to_str(v);
}

// The sort key of sort/min/max/unique: strings lowercased unless case_sensitive.
Value fold_case(const Value& v, bool case_sensitive) {
  return (!case_sensitive && v.is_string()) ? Value(py_lower(v.as_string())) : v;
}

Result<Value> f_abs(const Value& v, CallArgs& args) {
  ONECARD_TRY(bind_args(args, {}, "abs"));
  if (v.is_float()) return Value(std::fabs(v.as_double()));
  if (v.is_number()) {
    if (v.as_int() == INT64_MIN) return Error("integer overflow in abs()");
    return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
  }
  return make_error("bad operand type for abs(): '{}'", type_name(v));
}

Result<Value> f_attr(const Value& v, CallArgs& args) {
  ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"name"}, "attr", 1));
  ONECARD_ASSIGN_OR_RETURN(std::string name, arg_string(a[0], "attr", "name"));
  return get_attr(v, name);
}

Result<Value> f_capitalize(const Value& v, CallArgs& args) {
  ONECARD_TRY(bind_args(args, {}, "capitalize"));
  ONECARD_ASSIGN_OR_RETURN(std::string s, str_of(v));
  return Value(py_capitalize(s));
}

Result<Value> f_center(const Value& v, CallArgs& args) {
  ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"width"}, "center"));
  ONECARD_ASSIGN_OR_RETURN(int64_t width, arg_int(a[0], "center", "width", 80));
  if (width > kMaxWidth) return make_error("center: width {} is beyond the engine's limit", width);
  ONECARD_ASSIGN_OR_RETURN(std::string s, str_of(v));
  const auto n = static_cast<int64_t>(utf8_length(s));
  if (width <= n) return Value(s);
  // Python's str.center puts the odd space on the right unless the string length is odd.
  const int64_t pad = width - n;
  const int64_t left = pad / 2 + (pad & width & 1);
  return Value(std::string(static_cast<size_t>(left), ' ') + s +
               std::string(static_cast<size_t>(pad - left), ' '));
}

Result<Value> f_length(const Value& v, CallArgs& args) {
  ONECARD_TRY(bind_args(args, {}, "length"));
  ONECARD_ASSIGN_OR_RETURN(int64_t n, length(v));
  return Value(n);
}

Result<Value> f_default(const Value& v, CallArgs& args) {
  ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"default_value", "boolean"}, "default"));
  const bool use_default = v.is_undefined() || (arg_bool(a[1], false) && !truthy(v));
  if (!use_default) return v;
  return a[0] ? *a[0] : Value("");
}

Result<Value> f_dictsort(const Value& v, CallArgs& args) {
  ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"case_sensitive", "by", "reverse"}, "dictsort"));
  if (!v.is_object()) return Error("dictsort: can only sort a mapping");
  const bool cs = arg_bool(a[0], false);
  ONECARD_ASSIGN_OR_RETURN(std::string by, arg_string(a[1], "dictsort", "by", "key"));
  if (by != "key" && by != "value") return Error("You can only sort by either \"key\" or \"value\"");
  std::vector<Value> items;
  for (const auto& [k, val] : v.object_data().items) items.push_back(Value::array({Value(k), val}, true));
  const size_t pos = by == "key" ? 0 : 1;
  Status failed;
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    auto r = less_than(fold_case(x.array_data().items[pos], cs), fold_case(y.array_data().items[pos], cs));
    if (!r.ok()) failed = r.error();
    return r.ok() && *r;
  });
  ONECARD_TRY(failed);
  if (arg_bool(a[2], false)) std::reverse(items.begin(), items.end());
  return Value::array(std::move(items));
}

Result<Value> f_first(const Value& v, CallArgs& args) {
  ONECARD_TRY(bind_args(args, {}, "first"));
  ONECARD_ASSIGN_OR_RETURN(auto items, iterate(v));
  if (items.empty()) return Value::undefined("No first item, sequence was empty.");
  return items.front();
}

Result<Value> f_last(const Value& v, CallArgs& args) {
  ONECARD_TRY(bind_args(args, {}, "last"));
  ONECARD_ASSIGN_OR_RETURN(auto items, iterate(v));
  if (items.empty()) return Value::undefined("No last item, sequence was empty.");
  return items.back();
}

Result<Value> f_float(const Value& v, CallArgs& args) {
  ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"default"}, "float"));
  const Value fallback = a[0] ? *a[0] : Value(0.0);
  if (v.is_number()) return Value(v.as_double());
  if (v.is_string()) {
    const std::string s = py_strip(v.as_string(), std::nullopt, true, true);
    char* end = nullptr;
    const double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size()) return Value(d);
  }
  return fallback;
}

Result<Value> f_int(const Value& v, CallArgs& args) {
  ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"default", "base"}, "int"));
  const Value fallback = a[0] ? *a[0] : Value(0);
  ONECARD_ASSIGN_OR_RETURN(int64_t base, arg_int(a[1], "int", "base", 10));
  if (v.is_float()) {
    const auto t = truncate(v.as_double());
    return t ? Value(*t) : fallback;
  }
  if (v.is_number()) return Value(v.as_int());
  if (v.is_string()) {
    std::string s;
    for (char c : py_strip(v.as_string(), std::nullopt, true, true)) {
      if (c != '_') s += c;
    }
    char* end = nullptr;
    errno = 0;
    const long long i = std::strtoll(s.c_str(), &end, static_cast<int>(base));
    if (!s.empty() && end == s.c_str() + s.size() && errno == 0) return Value(static_cast<int64_t>(i));
    // Jinja2 then tries int(float(s)).
    const double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size() && truncate(d)) return Value(*truncate(d));
  }
  return fallback;
}

Result<Value> f_indent(const Value& v, CallArgs& args) {
  ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"width", "first", "blank"}, "indent"));
  std::string indention;
  if (a[0] && a[0]->is_string()) {
    indention = a[0]->as_string();
  } else {
    ONECARD_ASSIGN_OR_RETURN(int64_t width, arg_int(a[0], "indent", "width", 4));
    if (width > kMaxWidth) return make_error("indent: width {} is beyond the engine's limit", width);
    indention.assign(static_cast<size_t>(std::max<int64_t>(width, 0)), ' ');
  }
  ONECARD_ASSIGN_OR_RETURN(std::string s, str_of(v));
  s += "\n";  // Jinja2 appends a newline so that a trailing one is kept by splitlines
  std::vector<std::string> lines = py_splitlines(s, false);
  std::string out;
  if (arg_bool(a[2], false)) {
    for (size_t i = 0; i < lines.size(); ++i) out += (i > 0 ? "\n" + indention : "") + lines[i];
  } else {
    out = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) out += "\n" + (lines[i].empty() ? "" : indention + lines[i]);
  }
  if (arg_bool(a[1], false)) out = indention + out;
  return Value(std::move(out));
}

Result<Value> f_items(const Value& v, CallArgs& args) {
  ONECARD_TRY(bind_args(args, {}, "items"));
  if (v.is_undefined()) return Value::array();
  if (!v.is_object() || v.object_data().is_namespace) return Error("Can only get item pairs from a mapping.");
  std::vector<Value> items;
  for (const auto& [k, val] : v.object_data().items) items.push_back(Value::array({Value(k), val}, true));
  return Value::array(std::move(items));
}

Result<Value> f_join(const Value& v, CallArgs& args) {
  ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"d", "attribute"}, "join"));
  ONECARD_ASSIGN_OR_RETURN(std::string sep, arg_string(a[0], "join", "d"));
  ONECARD_ASSIGN_OR_RETURN(auto items, iterate(v));
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    Value item = items[i];
    if (a[1] && !a[1]->is_none()) {
      ONECARD_ASSIGN_OR_RETURN(std::string path, to_str(*a[1]));
      ONECARD_ASSIGN_OR_RETURN(item, attr_path(item, path));
    }
    ONECARD_ASSIGN_OR_RETURN(std::string s, str_of(item));
    if (i > 0) out += sep;
    out += s;
  }
  return Value(std::move(out));
}

Result<Value> f_list(const Value& v, CallArgs& args) {
  ONECARD_TRY(bind_args(args, {}, "list"));
  ONECARD_ASSIGN_OR_RETURN(auto items, iterate(v));
  return Value::array(std::move(items));
}

Result<Value> f_lower(const Value& v, CallArgs& args) {
  ONECARD_TRY(bind_args(args, {}, "lower"));
  ONECARD_ASSIGN_OR_RETURN(std::string s, str_of(v));
  return Value(py_lower(s));
}

Result<Value> f_upper(const Value& v, CallArgs& args) {
  ONECARD_TRY(bind_args(args, {}, "upper"));
  ONECARD_ASSIGN_OR_RETURN(std::string s, str_of(v));
  return Value(py_upper(s));
}

Result<Value> f_title(const Value& v, CallArgs& args) {
  ONECARD_TRY(bind_args(args, {}, "title"));
  ONECARD_ASSIGN_OR_RETURN(std::string s, str_of(v));
  return Value(py_title(s));
}

// map(attribute='x', default=d) or map('filter', args...).
Result<Value> f_map(const Value& v, CallArgs& args) {
  ONECARD_ASSIGN_OR_RETURN(auto items, iterate(v));
  std::vector<Value> out;
  const Value* attribute = nullptr;
  const Value* fallback = nullptr;
  for (const auto& [k, val] : args.named) {
    if (k == "attribute") attribute = &val;
    if (k == "default") fallback = &val;
  }
  if (attribute != nullptr) {
    ONECARD_ASSIGN_OR_RETURN(std::string path, to_str(*attribute));
    for (const Value& item : items) {
      ONECARD_ASSIGN_OR_RETURN(Value r, attr_path(item, path));
      out.push_back(r.is_undefined() && fallback != nullptr ? *fallback : r);
    }
    return Value::array(std::move(out));
  }
  if (args.positional.empty() || !args.positional[0].is_string())
    return Error("map requires a filter argument");
  const std::string name = args.positional[0].as_string();
  if (!has_filter(name)) return make_error("No filter named '{}'", name);
  CallArgs rest;
  rest.positional.assign(args.positional.begin() + 1, args.positional.end());
  rest.named = args.named;
  for (const Value& item : items) {
    CallArgs copy = rest;
    ONECARD_ASSIGN_OR_RETURN(Value r, apply_filter(name, item, copy));
    out.push_back(std::move(r));
  }
  return Value::array(std::move(out));
}

Result<Value> min_max(const Value& v, CallArgs& args, bool want_max) {
  const char* name = want_max ? "max" : "min";
  ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"case_sensitive", "attribute"}, name));
  ONECARD_ASSIGN_OR_RETURN(auto items, iterate(v));
  if (items.empty()) return Value::undefined(fmt::format("No aggregated item, sequence was empty."));
  const bool cs = arg_bool(a[0], false);
  Value best = items[0];
  Value best_key;
  for (size_t i = 0; i < items.size(); ++i) {
    Value key = items[i];
    if (a[1] && !a[1]->is_none()) {
      ONECARD_ASSIGN_OR_RETURN(std::string path, to_str(*a[1]));
      ONECARD_ASSIGN_OR_RETURN(key, attr_path(key, path));
    }
    key = fold_case(key, cs);
    if (i == 0) {
      best_key = key;
      continue;
    }
    ONECARD_ASSIGN_OR_RETURN(bool better, want_max ? less_than(best_key, key) : less_than(key, best_key));
    if (better) {
      best = items[i];
      best_key = key;
    }
  }
  return best;
}

Result<Value> f_max(const Value& v, CallArgs& args) {
  return min_max(v, args, true);
}
Result<Value> f_min(const Value& v, CallArgs& args) {
  return min_max(v, args, false);
}

// select/reject(test, args...) and selectattr/rejectattr(attribute, test, args...).
Result<Value> select_common(const Value& v, CallArgs& args, bool by_attr, bool keep_if) {
  ONECARD_ASSIGN_OR_RETURN(auto items, iterate(v));
  size_t next = 0;
  std::string path;
  if (by_attr) {
    if (args.positional.empty()) return Error("selectattr/rejectattr need an attribute");
    ONECARD_ASSIGN_OR_RETURN(path, to_str(args.positional[0]));
    next = 1;
  }
  std::string test;
  if (next < args.positional.size()) {
    ONECARD_ASSIGN_OR_RETURN(test, to_str(args.positional[next]));
    ++next;
  }
  if (!test.empty() && !has_test(test)) return make_error("No test named '{}'", test);
  CallArgs rest;
  rest.positional.assign(
      args.positional.begin() + static_cast<std::ptrdiff_t>(std::min(next, args.positional.size())),
      args.positional.end());
  rest.named = args.named;
  std::vector<Value> out;
  for (const Value& item : items) {
    Value subject = item;
    if (by_attr) {
      ONECARD_ASSIGN_OR_RETURN(subject, attr_path(item, path));
    }
    bool pass = truthy(subject);
    if (!test.empty()) {
      CallArgs copy = rest;
      ONECARD_ASSIGN_OR_RETURN(pass, apply_test(test, subject, copy));
    }
    if (pass == keep_if) out.push_back(item);
  }
  return Value::array(std::move(out));
}

Result<Value> f_select(const Value& v, CallArgs& args) {
  return select_common(v, args, false, true);
}
Result<Value> f_reject(const Value& v, CallArgs& args) {
  return select_common(v, args, false, false);
}
Result<Value> f_selectattr(const Value& v, CallArgs& args) {
  return select_common(v, args, true, true);
}
Result<Value> f_rejectattr(const Value& v, CallArgs& args) {
  return select_common(v, args, true, false);
}

Result<Value> f_replace(const Value& v, CallArgs& args) {
  ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"old", "new", "count"}, "replace", 2));
  ONECARD_ASSIGN_OR_RETURN(std::string s, str_of(v));
  ONECARD_ASSIGN_OR_RETURN(std::string old, str_of(*a[0]));
  ONECARD_ASSIGN_OR_RETURN(std::string with, str_of(*a[1]));
  ONECARD_ASSIGN_OR_RETURN(int64_t count, arg_int(a[2], "replace", "count", -1));
  return Value(py_replace(s, old, with, count));
}

Result<Value> f_reverse(const Value& v, CallArgs& args) {
  ONECARD_TRY(bind_args(args, {}, "reverse"));
  if (v.is_string()) {
    std::vector<char32_t> cps = utf8_decode(v.as_string());
    std::reverse(cps.begin(), cps.end());
    return Value(utf8_encode(cps));
  }
  ONECARD_ASSIGN_OR_RETURN(auto items, iterate(v));
  std::reverse(items.begin(), items.end());
  return Value::array(std::move(items));
}

Result<Value> f_round(const Value& v, CallArgs& args) {
  ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"precision", "method"}, "round"));
  ONECARD_ASSIGN_OR_RETURN(int64_t precision, arg_int(a[0], "round", "precision", 0));
  ONECARD_ASSIGN_OR_RETURN(std::string method, arg_string(a[1], "round", "method", "common"));
  if (!v.is_number()) return make_error("round: expected a number, not {}", type_name(v));
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double x = v.as_double() * scale;
  double r;
  if (method == "common") {
    r = std::nearbyint(x);  // Python's round() rounds half to even, as the default FE_TONEAREST does
  } else if (method == "ceil") {
    r = std::ceil(x);
  } else if (method == "floor") {
    r = std::floor(x);
  } else {
    return Error("method must be 'common', 'ceil' or 'floor'");
  }
  return Value(r / scale);
}

Result<Value> f_safe(const Value& v, CallArgs& args) {
  ONECARD_TRY(bind_args(args, {}, "safe"));
  return v;
}

Result<Value> f_escape(const Value& v, CallArgs& args) {
  ONECARD_TRY(bind_args(args, {}, "escape"));
  ONECARD_ASSIGN_OR_RETURN(std::string s, str_of(v));
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return Value(std::move(out));
}

Result<Value> f_sort(const Value& v, CallArgs& args) {
  ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"reverse", "case_sensitive", "attribute"}, "sort"));
  ONECARD_ASSIGN_OR_RETURN(auto items, iterate(v));
  const bool cs = arg_bool(a[1], false);
  std::string path;
  if (a[2] && !a[2]->is_none()) {
    ONECARD_ASSIGN_OR_RETURN(path, to_str(*a[2]));
  }
  std::vector<std::pair<Value, Value>> keyed;
  for (const Value& item : items) {
    Value key = item;
    if (!path.empty()) {
      ONECARD_ASSIGN_OR_RETURN(key, attr_path(item, path));
    }
    keyed.emplace_back(fold_case(key, cs), item);
  }
  const bool reverse = arg_bool(a[0], false);
  Status failed;
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    auto r = reverse ? less_than(y.first, x.first) : less_than(x.first, y.first);
    if (!r.ok()) failed = r.error();
    return r.ok() && *r;
  });
  ONECARD_TRY(failed);
  std::vector<Value> out;
  for (auto& kv : keyed) out.push_back(std::move(kv.second));
  return Value::array(std::move(out));
}

Result<Value> f_string(const Value& v, CallArgs& args) {
  ONECARD_TRY(bind_args(args, {}, "string"));
  ONECARD_ASSIGN_OR_RETURN(std::string s, str_of(v));
  return Value(std::move(s));
}

Result<Value> f_sum(const Value& v, CallArgs& args) {
  ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"attribute", "start"}, "sum"));
  ONECARD_ASSIGN_OR_RETURN(auto items, iterate(v));
  Value total = a[1] ? *a[1] : Value(0);
  for (const Value& item : items) {
    Value x = item;
    if (a[0] && !a[0]->is_none()) {
      ONECARD_ASSIGN_OR_RETURN(std::string path, to_str(*a[0]));
      ONECARD_ASSIGN_OR_RETURN(x, attr_path(item, path));
    }
    ONECARD_ASSIGN_OR_RETURN(total, binary_op("+", total, x));
  }
  return total;
}

// Hugging Face's tojson: json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
Result<Value> f_tojson(const Value& v, CallArgs& args) {
  ONECARD_ASSIGN_OR_RETURN(auto a,
                           bind_args(args, {"ensure_ascii", "indent", "separators", "sort_keys"}, "tojson"));
  JsonOptions opt;
  opt.ensure_ascii = arg_bool(a[0], false);
  if (a[1] && !a[1]->is_none()) {
    if (a[1]->is_string()) {
      opt.indent = a[1]->as_string();
    } else {
      ONECARD_ASSIGN_OR_RETURN(int64_t n, arg_int(a[1], "tojson", "indent", 0));
      opt.indent = std::string(static_cast<size_t>(std::max<int64_t>(n, 0)), ' ');
    }
  }
  if (a[2] && !a[2]->is_none()) {
    const Value& s = *a[2];
    if (!s.is_array() || s.array_data().items.size() != 2 || !s.array_data().items[0].is_string() ||
        !s.array_data().items[1].is_string()) {
      return Error("tojson: separators must be a pair of strings");
    }
    opt.separators = std::make_pair(s.array_data().items[0].as_string(), s.array_data().items[1].as_string());
  }
  opt.sort_keys = arg_bool(a[3], false);
  ONECARD_ASSIGN_OR_RETURN(std::string text, to_json_text(v, opt));
  return Value(std::move(text));
}

// Not a Jinja2 builtin: DeepSeek-V3.2's template parses string tool arguments with it (as json.loads).
Result<Value> f_from_json(const Value& v, CallArgs& args) {
  ONECARD_TRY(bind_args(args, {}, "from_json"));
  if (!v.is_string()) return make_error("from_json: expected a string, not {}", type_name(v));
  auto j = nlohmann::ordered_json::parse(v.as_string(), nullptr, false);
  if (j.is_discarded()) return Error("from_json: the string is not valid JSON");
  return from_json(j);
}

Result<Value> f_trim(const Value& v, CallArgs& args) {
  ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"chars"}, "trim"));
  ONECARD_ASSIGN_OR_RETURN(std::string s, str_of(v));
  std::optional<std::string> chars;
  if (a[0] && !a[0]->is_none()) {
    ONECARD_ASSIGN_OR_RETURN(chars, arg_string(a[0], "trim", "chars"));
  }
  return Value(py_strip(s, chars, true, true));
}

Result<Value> f_unique(const Value& v, CallArgs& args) {
  ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"case_sensitive", "attribute"}, "unique"));
  ONECARD_ASSIGN_OR_RETURN(auto items, iterate(v));
  const bool cs = arg_bool(a[0], false);
  std::vector<Value> seen;
  std::vector<Value> out;
  for (const Value& item : items) {
    Value key = item;
    if (a[1] && !a[1]->is_none()) {
      ONECARD_ASSIGN_OR_RETURN(std::string path, to_str(*a[1]));
      ONECARD_ASSIGN_OR_RETURN(key, attr_path(item, path));
    }
    key = fold_case(key, cs);
    if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, key); })) continue;
    seen.push_back(key);
    out.push_back(item);
  }
  return Value::array(std::move(out));
}

Result<Value> f_wordcount(const Value& v, CallArgs& args) {
  ONECARD_TRY(bind_args(args, {}, "wordcount"));
  ONECARD_ASSIGN_OR_RETURN(std::string s, str_of(v));
  return Value(static_cast<int64_t>(py_split(s, std::nullopt, -1, false).size()));
}

const std::map<std::string_view, FilterFn>& filters() {
  static const std::map<std::string_view, FilterFn> table = {
      {"abs", f_abs},
      {"attr", f_attr},
      {"capitalize", f_capitalize},
      {"center", f_center},
      {"count", f_length},
      {"d", f_default},
      {"default", f_default},
      {"dictsort", f_dictsort},
      {"e", f_escape},
      {"escape", f_escape},
      {"first", f_first},
      {"float", f_float},
      {"from_json", f_from_json},
      {"indent", f_indent},
      {"int", f_int},
      {"items", f_items},
      {"join", f_join},
      {"last", f_last},
      {"length", f_length},
      {"list", f_list},
      {"lower", f_lower},
      {"map", f_map},
      {"max", f_max},
      {"min", f_min},
      {"reject", f_reject},
      {"rejectattr", f_rejectattr},
      {"replace", f_replace},
      {"reverse", f_reverse},
      {"round", f_round},
      {"safe", f_safe},
      {"select", f_select},
      {"selectattr", f_selectattr},
      {"sort", f_sort},
      {"string", f_string},
      {"sum", f_sum},
      {"title", f_title},
      {"tojson", f_tojson},
      {"trim", f_trim},
      {"unique", f_unique},
      {"upper", f_upper},
      {"wordcount", f_wordcount},
  };
  return table;
}

}  // namespace

bool has_filter(std::string_view name) {
  return filters().count(name) != 0;
}

Result<Value> apply_filter(std::string_view name, const Value& input, CallArgs& args) {
  auto it = filters().find(name);
  if (it == filters().end()) return make_error("unknown filter '{}'", name);
  return it->second(input, args);
}

}  // namespace onecard::text::jinja
