// Jinja2's builtin tests (`x is defined`, `x is string`, `x is divisibleby 3`, ...).
#include <map>
#include <string_view>

#include "text/jinja/args.h"
#include "text/jinja/builtins.h"
#include "text/jinja/operators.h"
#include "text/jinja/strings.h"

namespace onecard::text::jinja {
namespace {

using TestFn = Result<bool> (*)(const Value& v, CallArgs& args);

#define ONECARD_JINJA_TEST(fn, name, expr)                           \
  Result<bool> fn([[maybe_unused]] const Value& v, CallArgs& args) { \
    ONECARD_TRY(bind_args(args, {}, name));                          \
    return (expr);                                                   \
  }

ONECARD_JINJA_TEST(t_defined, "defined", !v.is_undefined())
ONECARD_JINJA_TEST(t_undefined, "undefined", v.is_undefined())
ONECARD_JINJA_TEST(t_none, "none", v.is_none())
ONECARD_JINJA_TEST(t_boolean, "boolean", v.is_bool())
ONECARD_JINJA_TEST(t_true, "true", v.is_bool() && v.as_bool())
ONECARD_JINJA_TEST(t_false, "false", v.is_bool() && !v.as_bool())
ONECARD_JINJA_TEST(t_integer, "integer", v.is_int())
ONECARD_JINJA_TEST(t_float, "float", v.is_float())
ONECARD_JINJA_TEST(t_number, "number", v.is_number())
ONECARD_JINJA_TEST(t_string, "string", v.is_string())
ONECARD_JINJA_TEST(t_mapping, "mapping", v.is_object() && !v.object_data().is_namespace)
// Undefined iterates (as empty), has a length and can be called (to raise), as in Jinja2.
ONECARD_JINJA_TEST(t_iterable, "iterable",
                   v.is_undefined() || v.is_string() || v.is_array() ||
                       (v.is_object() && !v.object_data().is_namespace))
ONECARD_JINJA_TEST(t_sequence, "sequence",
                   v.is_undefined() || v.is_string() || v.is_array() ||
                       (v.is_object() && !v.object_data().is_namespace))
ONECARD_JINJA_TEST(t_callable, "callable", v.is_function() || v.is_undefined())
ONECARD_JINJA_TEST(t_escaped, "escaped", false)
ONECARD_JINJA_TEST(t_lower, "lower", v.is_string() && py_lower(v.as_string()) == v.as_string())
ONECARD_JINJA_TEST(t_upper, "upper", v.is_string() && py_upper(v.as_string()) == v.as_string())

#undef ONECARD_JINJA_TEST

Result<int64_t> int_subject(const Value& v, std::string_view test) {
  if (v.is_undefined()) return undefined_error(v);
  if (!v.is_number() || v.is_float())
    return make_error("test '{}' needs an integer, not {}", test, type_name(v));
  return v.as_int();
}

Result<bool> t_odd(const Value& v, CallArgs& args) {
  ONECARD_TRY(bind_args(args, {}, "odd"));
  ONECARD_ASSIGN_OR_RETURN(int64_t i, int_subject(v, "odd"));
  return i % 2 != 0;
}

Result<bool> t_even(const Value& v, CallArgs& args) {
  ONECARD_TRY(bind_args(args, {}, "even"));
  ONECARD_ASSIGN_OR_RETURN(int64_t i, int_subject(v, "even"));
  return i % 2 == 0;
}

Result<bool> t_divisibleby(const Value& v, CallArgs& args) {
  ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"num"}, "divisibleby", 1));
  ONECARD_ASSIGN_OR_RETURN(int64_t i, int_subject(v, "divisibleby"));
  ONECARD_ASSIGN_OR_RETURN(int64_t n, arg_int(a[0], "divisibleby", "num", 1));
  if (n == 0) return Error("integer division or modulo by zero");
  return i % n == 0;
}

Result<bool> t_sameas(const Value& v, CallArgs& args) {
  ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"other"}, "sameas", 1));
  return v.same_object(*a[0]);
}

template <const char* kOp>
Result<bool> t_compare(const Value& v, CallArgs& args) {
  ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"other"}, kOp, 1));
  return compare(kOp, v, *a[0]);
}

constexpr char kEq[] = "==";
constexpr char kNe[] = "!=";
constexpr char kLt[] = "<";
constexpr char kLe[] = "<=";
constexpr char kGt[] = ">";
constexpr char kGe[] = ">=";

Result<bool> t_in(const Value& v, CallArgs& args) {
  ONECARD_ASSIGN_OR_RETURN(auto a, bind_args(args, {"seq"}, "in", 1));
  return contains(*a[0], v);
}

Result<bool> t_filter(const Value& v, CallArgs& args) {
  ONECARD_TRY(bind_args(args, {}, "filter"));
  return v.is_string() && has_filter(v.as_string());
}

Result<bool> t_test(const Value& v, CallArgs& args) {
  ONECARD_TRY(bind_args(args, {}, "test"));
  return v.is_string() && has_test(v.as_string());
}

const std::map<std::string_view, TestFn>& tests() {
  static const std::map<std::string_view, TestFn> table = {
      {"defined", t_defined},
      {"undefined", t_undefined},
      {"none", t_none},
      {"boolean", t_boolean},
      {"true", t_true},
      {"false", t_false},
      {"integer", t_integer},
      {"float", t_float},
      {"number", t_number},
      {"string", t_string},
      {"mapping", t_mapping},
      {"iterable", t_iterable},
      {"sequence", t_sequence},
      {"callable", t_callable},
      {"escaped", t_escaped},
      {"lower", t_lower},
      {"upper", t_upper},
      {"odd", t_odd},
      {"even", t_even},
      {"divisibleby", t_divisibleby},
      {"sameas", t_sameas},
      {"eq", t_compare<kEq>},
      {"equalto", t_compare<kEq>},
      {"==", t_compare<kEq>},
      {"ne", t_compare<kNe>},
      {"!=", t_compare<kNe>},
      {"lt", t_compare<kLt>},
      {"lessthan", t_compare<kLt>},
      {"<", t_compare<kLt>},
      {"le", t_compare<kLe>},
      {"<=", t_compare<kLe>},
      {"gt", t_compare<kGt>},
      {"greaterthan", t_compare<kGt>},
      {">", t_compare<kGt>},
      {"ge", t_compare<kGe>},
      {">=", t_compare<kGe>},
      {"in", t_in},
      {"filter", t_filter},
      {"test", t_test},
  };
  return table;
}

}  // namespace

bool has_test(std::string_view name) {
  return tests().count(name) != 0;
}

Result<bool> apply_test(std::string_view name, const Value& input, CallArgs& args) {
  auto it = tests().find(name);
  if (it == tests().end()) return make_error("unknown test '{}'", name);
  return it->second(input, args);
}

}  // namespace onecard::text::jinja
