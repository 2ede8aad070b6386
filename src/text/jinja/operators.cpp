#include "text/jinja/operators.h"

#include <cmath>
#include <cstdint>

#include "text/jinja/format.h"
#include "text/jinja/utf8.h"

namespace onecard::text::jinja {

Error undefined_error(const Value& v) {
  return Error(v.undefined_message().empty() ? "value is undefined" : v.undefined_message());
}

namespace {

Error type_error(std::string_view op, const Value& a, const Value& b) {
  return make_error("unsupported operand type(s) for {}: '{}' and '{}'", op, type_name(a), type_name(b));
}

// Python has big integers; a template has no use for them, so overflow is an error rather than a wrap.
Error overflow(std::string_view op) {
  return make_error("integer overflow in '{}' (this engine's integers are 64-bit)", op);
}

// The largest string or list that `*` may build: larger ones only exhaust memory.
constexpr int64_t kMaxRepeatBytes = int64_t{1} << 26;

Result<Value> repeat(const Value& seq, int64_t n) {
  const int64_t unit = seq.is_string() ? static_cast<int64_t>(seq.as_string().size())
                                       : static_cast<int64_t>(seq.array_data().items.size()) * 16;
  if (n > 0 && unit > 0 && n > kMaxRepeatBytes / unit) {
    return make_error("repeating a {} {} times exceeds the engine's limit", type_name(seq), n);
  }
  if (seq.is_string()) {
    std::string out;
    for (int64_t i = 0; i < n; ++i) out += seq.as_string();
    return Value(std::move(out));
  }
  std::vector<Value> items;
  for (int64_t i = 0; i < n; ++i) {
    for (const Value& e : seq.array_data().items) items.push_back(e);
  }
  return Value::array(std::move(items), seq.array_data().tuple);
}

// Python's floor division and modulo: the result takes the sign of the divisor.
int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

}  // namespace

Result<Value> binary_op(std::string_view op, const Value& a, const Value& b) {
  if (op == "~") {
    ONECARD_ASSIGN_OR_RETURN(std::string x, to_str(a));
    ONECARD_ASSIGN_OR_RETURN(std::string y, to_str(b));
    return Value(x + y);
  }
  if (a.is_undefined()) return undefined_error(a);
  if (b.is_undefined()) return undefined_error(b);
  const bool nums = a.is_number() && b.is_number();
  const bool ints = nums && !a.is_float() && !b.is_float();
  if (op == "+") {
    if (ints) {
      int64_t r = 0;
      if (__builtin_add_overflow(a.as_int(), b.as_int(), &r)) return overflow(op);
      return Value(r);
    }
    if (nums) return Value(a.as_double() + b.as_double());
    if (a.is_string() && b.is_string()) return Value(a.as_string() + b.as_string());
    if (a.is_array() && b.is_array() && a.array_data().tuple == b.array_data().tuple) {
      std::vector<Value> items = a.array_data().items;
      for (const Value& e : b.array_data().items) items.push_back(e);
      return Value::array(std::move(items), a.array_data().tuple);
    }
    if (a.is_string()) {
      return make_error("can only concatenate str (not \"{}\") to str", type_name(b));
    }
    return type_error(op, a, b);
  }
  if (op == "-") {
    if (ints) {
      int64_t r = 0;
      if (__builtin_sub_overflow(a.as_int(), b.as_int(), &r)) return overflow(op);
      return Value(r);
    }
    if (nums) return Value(a.as_double() - b.as_double());
    return type_error(op, a, b);
  }
  if (op == "*") {
    if (ints) {
      int64_t r = 0;
      if (__builtin_mul_overflow(a.as_int(), b.as_int(), &r)) return overflow(op);
      return Value(r);
    }
    if (nums) return Value(a.as_double() * b.as_double());
    if ((a.is_string() || a.is_array()) && b.is_number() && !b.is_float()) return repeat(a, b.as_int());
    if ((b.is_string() || b.is_array()) && a.is_number() && !a.is_float()) return repeat(b, a.as_int());
    return type_error(op, a, b);
  }
  if (!nums) {
    if (op == "%" && a.is_string()) return Error("unsupported construct: '%' string formatting");
    return type_error(op, a, b);
  }
  if (op == "/") {
    if (b.as_double() == 0.0) return Error("division by zero");
    return Value(a.as_double() / b.as_double());
  }
  if (op == "//" || op == "%") {
    if (b.as_double() == 0.0)
      return Error(op == "//" ? "integer division or modulo by zero" : "modulo by zero");
    if (ints) {
      if (a.as_int() == INT64_MIN && b.as_int() == -1) return overflow(op);
      const int64_t q = floor_div(a.as_int(), b.as_int());
      return op == "//" ? Value(q) : Value(a.as_int() - q * b.as_int());
    }
    const double q = std::floor(a.as_double() / b.as_double());
    return op == "//" ? Value(q) : Value(a.as_double() - q * b.as_double());
  }
  if (op == "**") {
    if (ints && b.as_int() >= 0) {
      int64_t r = 1;
      for (int64_t i = 0; i < b.as_int(); ++i) {
        if (__builtin_mul_overflow(r, a.as_int(), &r)) return overflow(op);
        if (r == 0 || r == 1) break;  // 0 and 1 stay put; -1 alternates, handled by parity below
      }
      if (a.as_int() == -1) r = (b.as_int() % 2 == 0) ? 1 : -1;
      return Value(r);
    }
    return Value(std::pow(a.as_double(), b.as_double()));
  }
  return make_error("unknown operator '{}'", op);
}

Result<Value> unary_minus(const Value& v) {
  if (v.is_undefined()) return undefined_error(v);
  if (v.is_float()) return Value(-v.as_double());
  if (v.is_number()) {
    if (v.as_int() == INT64_MIN) return overflow("-");
    return Value(-v.as_int());
  }
  return make_error("bad operand type for unary -: '{}'", type_name(v));
}

Result<bool> less_than(const Value& a, const Value& b) {
  if (a.is_undefined()) return undefined_error(a);
  if (b.is_undefined()) return undefined_error(b);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() < b.as_double();
    return a.as_int() < b.as_int();
  }
  // UTF-8 byte order is code point order, which is Python's string order.
  if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();
  if (a.is_array() && b.is_array()) {
    const auto& x = a.array_data().items;
    const auto& y = b.array_data().items;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (equals(x[i], y[i])) continue;
      return less_than(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  return make_error("'<' not supported between instances of '{}' and '{}'", type_name(a), type_name(b));
}

Result<bool> contains(const Value& container, const Value& needle) {
  switch (container.kind()) {
    case Value::Kind::Undefined:
      return false;
    case Value::Kind::String:
      if (!needle.is_string()) {
        if (needle.is_undefined()) return undefined_error(needle);
        return make_error("'in <string>' requires string as left operand, not {}", type_name(needle));
      }
      return container.as_string().find(needle.as_string()) != std::string::npos;
    case Value::Kind::Array:
      for (const Value& e : container.array_data().items) {
        if (equals(e, needle)) return true;
      }
      return false;
    case Value::Kind::Object:
      if (container.object_data().is_namespace) break;
      return needle.is_string() && container.object_data().find(needle.as_string()) != nullptr;
    default:
      break;
  }
  return make_error("argument of type '{}' is not iterable", type_name(container));
}

Result<bool> compare(std::string_view op, const Value& a, const Value& b) {
  if (op == "==") return equals(a, b);
  if (op == "!=") return !equals(a, b);
  if (op == "in") return contains(b, a);
  if (op == "not in") {
    ONECARD_ASSIGN_OR_RETURN(bool in, contains(b, a));
    return !in;
  }
  if (op == "<") return less_than(a, b);
  if (op == ">") return less_than(b, a);
  if (op == "<=") {
    ONECARD_ASSIGN_OR_RETURN(bool gt, less_than(b, a));
    return !gt;
  }
  if (op == ">=") {
    ONECARD_ASSIGN_OR_RETURN(bool lt, less_than(a, b));
    return !lt;
  }
  return make_error("unknown comparison '{}'", op);
}

Result<std::vector<Value>> iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined:
      return std::vector<Value>{};
    case Value::Kind::Array:
      return v.array_data().items;
    case Value::Kind::Object: {
      if (v.object_data().is_namespace) break;
      std::vector<Value> keys;
      for (const auto& kv : v.object_data().items) keys.emplace_back(kv.first);
      return keys;
    }
    case Value::Kind::String: {
      std::vector<Value> chars;
      for (char32_t c : utf8_decode(v.as_string())) {
        std::string s;
        utf8_append(s, c);
        chars.emplace_back(std::move(s));
      }
      return chars;
    }
    default:
      break;
  }
  return make_error("'{}' object is not iterable", type_name(v));
}

Result<int64_t> length(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined:
      return int64_t{0};
    case Value::Kind::String:
      return static_cast<int64_t>(utf8_length(v.as_string()));
    case Value::Kind::Array:
      return static_cast<int64_t>(v.array_data().items.size());
    case Value::Kind::Object:
      if (v.object_data().is_namespace) break;
      return static_cast<int64_t>(v.object_data().items.size());
    default:
      break;
  }
  return make_error("object of type '{}' has no len()", type_name(v));
}

}  // namespace onecard::text::jinja
