#include "text/jinja/format.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "text/jinja/utf8.h"

namespace onecard::text::jinja {

std::string format_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  // Shortest round-trip digits in scientific form ("d.ddde+XX"), rearranged by Python's repr rule.
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, r.ptr);
  const size_t e = sci.find('e');
  std::string mant = sci.substr(0, e);
  const int exp = std::atoi(sci.c_str() + e + 1);
  const bool neg = mant[0] == '-';
  if (neg) mant.erase(0, 1);
  std::string digits;
  for (char c : mant) {
    if (c != '.') digits += c;
  }
  std::string out = neg ? "-" : "";
  if (exp < -4 || exp >= 16) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    out += exp < 0 ? "e-" : "e+";
    const int a = std::abs(exp);
    if (a < 10) out += "0";
    out += std::to_string(a);
    return out;
  }
  if (exp < 0) {
    out += "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
  } else if (static_cast<size_t>(exp) + 1 >= digits.size()) {
    out += digits + std::string(static_cast<size_t>(exp) + 1 - digits.size(), '0') + ".0";
  } else {
    out += digits.substr(0, static_cast<size_t>(exp) + 1) + "." + digits.substr(static_cast<size_t>(exp) + 1);
  }
  return out;
}

namespace {

// Code points that Python's str.isprintable() rejects, as far as chat text meets them: controls,
// separators other than the space, format characters, surrogates and private use.
bool printable(char32_t c) {
  if (c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD) return false;
  if (c == 0x1680 || (c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F)) return false;
  if ((c >= 0x205F && c <= 0x206F) || c == 0x3000 || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFB))
    return false;
  if ((c >= 0xD800 && c <= 0xF8FF) || c >= 0xF0000) return false;
  return true;
}

void append_hex(std::string& out, const char* prefix, uint32_t v, int width) {
  static const char* kHex = "0123456789abcdef";
  out += prefix;
  for (int i = width - 1; i >= 0; --i) out += kHex[(v >> (4 * i)) & 0xF];
}

}  // namespace

std::string quote_string(const std::string& s) {
  const char q = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
  std::string out(1, q);
  for (char32_t c : utf8_decode(s)) {
    if (c == static_cast<char32_t>(q) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (printable(c)) {
      utf8_append(out, c);
    } else if (c < 0x100) {
      append_hex(out, "\\x", c, 2);
    } else if (c < 0x10000) {
      append_hex(out, "\\u", c, 4);
    } else {
      append_hex(out, "\\U", c, 8);
    }
  }
  out += q;
  return out;
}

namespace {

Result<std::string> repr_at(const Value& v, int depth, bool top_str);

Result<std::string> join_items(const Value& v, int depth) {
  std::string out;
  if (v.is_array()) {
    const auto& a = v.array_data();
    out += a.tuple ? "(" : "[";
    for (size_t i = 0; i < a.items.size(); ++i) {
      if (i > 0) out += ", ";
      ONECARD_ASSIGN_OR_RETURN(std::string s, repr_at(a.items[i], depth + 1, false));
      out += s;
    }
    if (a.tuple && a.items.size() == 1) out += ",";
    out += a.tuple ? ")" : "]";
    return out;
  }
  const auto& o = v.object_data();
  out += o.is_namespace ? "<Namespace {" : "{";
  bool first = true;
  for (const auto& [k, e] : o.items) {
    if (!first) out += ", ";
    first = false;
    out += quote_string(k) + ": ";
    ONECARD_ASSIGN_OR_RETURN(std::string s, repr_at(e, depth + 1, false));
    out += s;
  }
  out += o.is_namespace ? "}>" : "}";
  return out;
}

// top_str: str() rather than repr() for this (outermost) value.
Result<std::string> repr_at(const Value& v, int depth, bool top_str) {
  if (depth > kMaxValueDepth) return make_error("a value nests deeper than {} levels", kMaxValueDepth);
  switch (v.kind()) {
    case Value::Kind::Undefined:
      return std::string(top_str ? "" : "Undefined");
    case Value::Kind::None:
      return std::string("None");
    case Value::Kind::Bool:
      return std::string(v.as_bool() ? "True" : "False");
    case Value::Kind::Int:
      return std::to_string(v.as_int());
    case Value::Kind::Float:
      return format_float(v.as_double());
    case Value::Kind::String:
      return top_str ? v.as_string() : quote_string(v.as_string());
    case Value::Kind::Array:
    case Value::Kind::Object:
      return join_items(v, depth);
    case Value::Kind::Function:
      return "<function " + v.function_data().name + ">";
  }
  return std::string();
}

void json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  for (char32_t c : utf8_decode(s)) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20 || (ensure_ascii && c >= 0x7F)) {
          if (c >= 0x10000) {
            const char32_t v = c - 0x10000;
            append_hex(out, "\\u", 0xD800 + (v >> 10), 4);
            append_hex(out, "\\u", 0xDC00 + (v & 0x3FF), 4);
          } else {
            append_hex(out, "\\u", c, 4);
          }
        } else {
          utf8_append(out, c);
        }
    }
  }
  out += '"';
}

struct JsonWriter {
  const JsonOptions& opt;
  std::string item_sep;
  std::string key_sep;
  std::string out;

  void newline(int level) {
    out += '\n';
    for (int i = 0; i < level; ++i) out += *opt.indent;
  }

  Status write(const Value& v, int depth) {
    if (depth > kMaxValueDepth) return make_error("a value nests deeper than {} levels", kMaxValueDepth);
    switch (v.kind()) {
      case Value::Kind::None:
        out += "null";
        return {};
      case Value::Kind::Bool:
        out += v.as_bool() ? "true" : "false";
        return {};
      case Value::Kind::Int:
        out += std::to_string(v.as_int());
        return {};
      case Value::Kind::Float: {
        const double d = v.as_double();
        if (std::isnan(d)) {
          out += "NaN";
        } else if (std::isinf(d)) {
          out += d < 0 ? "-Infinity" : "Infinity";
        } else {
          out += format_float(d);
        }
        return {};
      }
      case Value::Kind::String:
        json_string(out, v.as_string(), opt.ensure_ascii);
        return {};
      case Value::Kind::Array: {
        const auto& items = v.array_data().items;
        if (items.empty()) {
          out += "[]";
          return {};
        }
        out += '[';
        for (size_t i = 0; i < items.size(); ++i) {
          if (i > 0) out += item_sep;
          if (opt.indent) newline(depth + 1);
          ONECARD_TRY(write(items[i], depth + 1));
        }
        if (opt.indent) newline(depth);
        out += ']';
        return {};
      }
      case Value::Kind::Object: {
        std::vector<const std::pair<std::string, Value>*> items;
        for (const auto& kv : v.object_data().items) items.push_back(&kv);
        if (items.empty()) {
          out += "{}";
          return {};
        }
        if (opt.sort_keys) {
          std::stable_sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first < b->first; });
        }
        out += '{';
        for (size_t i = 0; i < items.size(); ++i) {
          if (i > 0) out += item_sep;
          if (opt.indent) newline(depth + 1);
          json_string(out, items[i]->first, opt.ensure_ascii);
          out += key_sep;
          ONECARD_TRY(write(items[i]->second, depth + 1));
        }
        if (opt.indent) newline(depth);
        out += '}';
        return {};
      }
      default:
        return make_error("Object of type {} is not JSON serializable", type_name(v));
    }
  }
};

}  // namespace

Result<std::string> to_str(const Value& v) {
  return repr_at(v, 0, true);
}

Result<std::string> to_repr(const Value& v) {
  return repr_at(v, 0, false);
}

Result<std::string> to_json_text(const Value& v, const JsonOptions& options) {
  // json.dumps: ", " between items on one line, "," when indenting (the newline follows).
  JsonWriter w{options, options.indent ? "," : ", ", ": ", {}};
  if (options.separators) {
    w.item_sep = options.separators->first;
    w.key_sep = options.separators->second;
  }
  ONECARD_TRY(w.write(v, 0));
  return std::move(w.out);
}

}  // namespace onecard::text::jinja
