#include "text/jinja/value.h"

#include <nlohmann/json.hpp>

namespace onecard::text::jinja {

const Value* ObjectData::find(std::string_view key) const {
  for (const auto& [k, v] : items) {
    if (k == key) return &v;
  }
  return nullptr;
}

void ObjectData::set(const std::string& key, Value value) {
  for (auto& [k, v] : items) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  items.emplace_back(key, std::move(value));
}

Value Value::array(std::vector<Value> items, bool tuple) {
  auto a = std::make_shared<ArrayData>();
  a->items = std::move(items);
  a->tuple = tuple;
  return Value(std::move(a));
}

Value Value::object() {
  return Value(std::make_shared<ObjectData>());
}

Value Value::function(std::string name, NativeFunction call) {
  return Value(std::make_shared<FunctionData>(FunctionData{std::move(name), std::move(call)}));
}

bool Value::same_object(const Value& other) const {
  if (kind() != other.kind()) return false;
  switch (kind()) {
    case Kind::Array:
      return &array_data() == &other.array_data();
    case Kind::Object:
      return &object_data() == &other.object_data();
    case Kind::Function:
      return &function_data() == &other.function_data();
    default:
      return equals(*this, other);
  }
}

bool truthy(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined:
    case Value::Kind::None:
      return false;
    case Value::Kind::Bool:
      return v.as_bool();
    case Value::Kind::Int:
      return v.as_int() != 0;
    case Value::Kind::Float:
      return v.as_double() != 0.0;
    case Value::Kind::String:
      return !v.as_string().empty();
    case Value::Kind::Array:
      return !v.array_data().items.empty();
    case Value::Kind::Object:
      return !v.object_data().items.empty();
    case Value::Kind::Function:
      return true;
  }
  return false;
}

namespace {

bool equals_at(const Value& a, const Value& b, int depth) {
  if (depth > kMaxValueDepth) return false;
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::Undefined:
    case Value::Kind::None:
      return true;
    case Value::Kind::String:
      return a.as_string() == b.as_string();
    case Value::Kind::Array: {
      const auto& x = a.array_data();
      const auto& y = b.array_data();
      // Python: a list never equals a tuple.
      if (x.tuple != y.tuple || x.items.size() != y.items.size()) return false;
      for (size_t i = 0; i < x.items.size(); ++i) {
        if (!equals_at(x.items[i], y.items[i], depth + 1)) return false;
      }
      return true;
    }
    case Value::Kind::Object: {
      const auto& x = a.object_data();
      const auto& y = b.object_data();
      if (x.is_namespace || y.is_namespace) return &x == &y;
      if (x.items.size() != y.items.size()) return false;
      for (const auto& [k, v] : x.items) {
        const Value* other = y.find(k);
        if (other == nullptr || !equals_at(v, *other, depth + 1)) return false;
      }
      return true;
    }
    case Value::Kind::Function:
      return &a.function_data() == &b.function_data();
    default:
      return false;
  }
}

Result<Value> from_json_at(const nlohmann::ordered_json& j, int depth) {
  if (depth > kMaxValueDepth) return make_error("the input nests deeper than {} levels", kMaxValueDepth);
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return Value(nullptr);
    case nlohmann::ordered_json::value_t::boolean:
      return Value(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Value(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<double>(u));
      return Value(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float:
      return Value(j.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return Value(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& e : j) {
        ONECARD_ASSIGN_OR_RETURN(Value v, from_json_at(e, depth + 1));
        items.push_back(std::move(v));
      }
      return Value::array(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Value obj = Value::object();
      for (const auto& [k, e] : j.items()) {
        ONECARD_ASSIGN_OR_RETURN(Value v, from_json_at(e, depth + 1));
        obj.object_data().items.emplace_back(k, std::move(v));
      }
      return obj;
    }
    default:
      return make_error("unsupported JSON value ({})", j.type_name());
  }
}

Result<nlohmann::ordered_json> to_json_at(const Value& v, int depth) {
  if (depth > kMaxValueDepth) return make_error("a value nests deeper than {} levels", kMaxValueDepth);
  switch (v.kind()) {
    case Value::Kind::None:
      return nlohmann::ordered_json(nullptr);
    case Value::Kind::Bool:
      return nlohmann::ordered_json(v.as_bool());
    case Value::Kind::Int:
      return nlohmann::ordered_json(v.as_int());
    case Value::Kind::Float:
      return nlohmann::ordered_json(v.as_double());
    case Value::Kind::String:
      return nlohmann::ordered_json(v.as_string());
    case Value::Kind::Array: {
      auto out = nlohmann::ordered_json::array();
      for (const Value& e : v.array_data().items) {
        ONECARD_ASSIGN_OR_RETURN(auto j, to_json_at(e, depth + 1));
        out.push_back(std::move(j));
      }
      return out;
    }
    case Value::Kind::Object: {
      auto out = nlohmann::ordered_json::object();
      for (const auto& [k, e] : v.object_data().items) {
        ONECARD_ASSIGN_OR_RETURN(auto j, to_json_at(e, depth + 1));
        out[k] = std::move(j);
      }
      return out;
    }
    default:
      return make_error("Object of type {} is not JSON serializable", type_name(v));
  }
}

}  // namespace

bool equals(const Value& a, const Value& b) {
  return equals_at(a, b, 0);
}

std::string_view type_name(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined:
      return "Undefined";
    case Value::Kind::None:
      return "NoneType";
    case Value::Kind::Bool:
      return "bool";
    case Value::Kind::Int:
      return "int";
    case Value::Kind::Float:
      return "float";
    case Value::Kind::String:
      return "str";
    case Value::Kind::Array:
      return v.array_data().tuple ? "tuple" : "list";
    case Value::Kind::Object:
      return v.object_data().is_namespace ? "Namespace" : "dict";
    case Value::Kind::Function:
      return "function";
  }
  return "?";
}

Result<Value> from_json(const nlohmann::ordered_json& j) {
  return from_json_at(j, 0);
}

Result<nlohmann::ordered_json> to_json(const Value& v) {
  return to_json_at(v, 0);
}

}  // namespace onecard::text::jinja
