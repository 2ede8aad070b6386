// The values a template computes with: Python's None, bool, int, float, str, list/tuple, dict and callables,
// plus Jinja2's Undefined. Lists and dicts are shared by reference, as in Python, so that a namespace
// assigned inside a loop is seen outside it; the sandbox (as Hugging Face's) never mutates a list or a dict
// except through namespace attribute assignment.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "base/result.h"

namespace onecard::text::jinja {

class Value;

// Jinja2's Undefined: falsy, prints as nothing, iterates as empty; most other uses raise `message`.
struct Undefined {
  std::string message;  // "'x' is undefined", "'dict object' has no attribute 'y'"
};

struct ArrayData {
  std::vector<Value> items;
  bool tuple = false;  // printed as (a, b) rather than [a, b]
};

// A dict keeps insertion order, as Python's does (HF renders tojson without sort_keys).
struct ObjectData {
  std::vector<std::pair<std::string, Value>> items;
  bool is_namespace = false;  // namespace(): the only object a template may assign attributes to

  const Value* find(std::string_view key) const;
  void set(const std::string& key, Value value);
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> named;
};

using NativeFunction = std::function<Result<Value>(CallArgs&)>;

struct FunctionData {
  std::string name;
  NativeFunction call;
};

class Value {
 public:
  enum class Kind { Undefined, None, Bool, Int, Float, String, Array, Object, Function };

  Value() : v_(Undefined{}) {}
  Value(std::nullptr_t) : v_(nullptr) {}                        // NOLINT: None
  Value(bool b) : v_(b) {}                                      // NOLINT
  Value(int64_t i) : v_(i) {}                                   // NOLINT
  Value(int i) : v_(static_cast<int64_t>(i)) {}                 // NOLINT
  Value(double d) : v_(d) {}                                    // NOLINT
  Value(std::string s) : v_(std::move(s)) {}                    // NOLINT
  Value(const char* s) : v_(std::string(s)) {}                  // NOLINT
  Value(std::string_view s) : v_(std::string(s)) {}             // NOLINT
  Value(std::shared_ptr<ArrayData> a) : v_(std::move(a)) {}     // NOLINT
  Value(std::shared_ptr<ObjectData> o) : v_(std::move(o)) {}    // NOLINT
  Value(std::shared_ptr<FunctionData> f) : v_(std::move(f)) {}  // NOLINT

  static Value undefined(std::string message) { return Value(Undefined{std::move(message)}); }
  static Value array(std::vector<Value> items = {}, bool tuple = false);
  static Value object();
  static Value function(std::string name, NativeFunction call);

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_undefined() const { return kind() == Kind::Undefined; }
  bool is_none() const { return kind() == Kind::None; }
  bool is_bool() const { return kind() == Kind::Bool; }
  bool is_int() const { return kind() == Kind::Int; }
  bool is_float() const { return kind() == Kind::Float; }
  // Python's numbers include bool, which is an int subclass.
  bool is_number() const { return is_bool() || is_int() || is_float(); }
  bool is_string() const { return kind() == Kind::String; }
  bool is_array() const { return kind() == Kind::Array; }
  bool is_object() const { return kind() == Kind::Object; }
  bool is_function() const { return kind() == Kind::Function; }

  bool as_bool() const { return std::get<bool>(v_); }
  // An int (or a bool as 0/1).
  int64_t as_int() const { return is_bool() ? (as_bool() ? 1 : 0) : std::get<int64_t>(v_); }
  double as_double() const { return is_float() ? std::get<double>(v_) : static_cast<double>(as_int()); }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  ArrayData& array_data() const { return *std::get<std::shared_ptr<ArrayData>>(v_); }
  ObjectData& object_data() const { return *std::get<std::shared_ptr<ObjectData>>(v_); }
  FunctionData& function_data() const { return *std::get<std::shared_ptr<FunctionData>>(v_); }
  const std::string& undefined_message() const { return std::get<Undefined>(v_).message; }

  // Same list or dict object (Python's `is`), for the `sameas` test.
  bool same_object(const Value& other) const;

 private:
  explicit Value(Undefined u) : v_(std::move(u)) {}
  std::variant<Undefined, std::nullptr_t, bool, int64_t, double, std::string, std::shared_ptr<ArrayData>,
               std::shared_ptr<ObjectData>, std::shared_ptr<FunctionData>>
      v_;
};

// How deep lists and dicts may nest where a value is walked (printing, comparing, converting): a template
// can build nesting in a loop, and an unbounded walk would overflow the stack.
inline constexpr int kMaxValueDepth = 256;

bool truthy(const Value& v);
// Python's ==, with 1 == 1.0 == True; containers compare element-wise (false beyond kMaxValueDepth).
bool equals(const Value& a, const Value& b);
// Python's type name, for messages: "str", "int", "dict", "list", "NoneType", "undefined".
std::string_view type_name(const Value& v);

Result<Value> from_json(const nlohmann::ordered_json& j);
Result<nlohmann::ordered_json> to_json(const Value& v);

}  // namespace onecard::text::jinja
