#include "serve/openai_request.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>

#include <fmt/format.h>

namespace onecard::serve {
namespace {

constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();

// The checks stop at the first bad field by throwing a Rejection, caught at the two entry points: they then
// read as a plain list, and none can forget to pass an error up. It never leaves this file.
struct Rejection {
  ApiError error;
};

[[noreturn]] void reject(std::string param, std::string message) {
  throw Rejection{ApiError::invalid_request(std::move(param), std::move(message))};
}

// A client's string in an error message: quoted, and cut short (not inside a UTF-8 character) when long.
std::string quoted(const std::string& s) {
  constexpr size_t kShown = 40;
  if (s.size() <= kShown) return fmt::format("\"{}\"", s);
  size_t cut = kShown;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return fmt::format("\"{}...\"", s.substr(0, cut));
}

// A value as an error message shows it: the value itself when short, else its kind.
std::string describe(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return v.get<bool>() ? "true" : "false";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return v.dump();
    case json::value_t::number_float:
      return std::isfinite(v.get<double>()) ? v.dump() : "a number out of range";
    case json::value_t::string:
      return "the string " + quoted(v.get_ref<const std::string&>());
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    default:
      return "an unreadable value";
  }
}

[[noreturn]] void expected(const std::string& param, std::string_view what, const json& found) {
  reject(param, fmt::format("`{}` must be {}; found {}", param, what, describe(found)));
}

std::string key_path(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string(key) : fmt::format("{}.{}", parent, key);
}
std::string index_path(const std::string& parent, size_t i) {
  return fmt::format("{}[{}]", parent, i);
}

// The field, or nullptr when it is absent or null (clients send null for "not given").
const json* get(const json& object, const char* key) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string as_string(const json& v, const std::string& param) {
  if (!v.is_string()) expected(param, "a string", v);
  return v.get<std::string>();
}

bool as_bool(const json& v, const std::string& param) {
  if (!v.is_boolean()) expected(param, "a boolean", v);
  return v.get<bool>();
}

// A number in [lo, hi], or in (lo, hi] when lo_open; `what` says so in words.
double as_number(const json& v, const std::string& param, double lo, double hi, bool lo_open,
                 std::string_view what) {
  if (!v.is_number()) expected(param, what, v);
  const double d = v.get<double>();
  const bool above = lo_open ? d > lo : d >= lo;
  if (!std::isfinite(d) || !above || d > hi) expected(param, what, v);
  return d;
}

// An integer in [lo, hi]. A float with an integral value (5.0) counts, as JavaScript clients cannot tell.
int64_t as_integer(const json& v, const std::string& param, int64_t lo, int64_t hi, std::string_view what) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    // JSON's non-negative integers parse as unsigned, so the lower bound matters here too.
    if (u > static_cast<uint64_t>(hi) || (lo > 0 && u < static_cast<uint64_t>(lo))) expected(param, what, v);
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (i < lo || i > hi) expected(param, what, v);
    return i;
  }
  if (v.is_number_float()) {
    // Beyond 2^53 a double is no longer an exact integer (and near 2^63 the cast would overflow).
    constexpr double kExact = 9007199254740992.0;
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) <= kExact && d >= static_cast<double>(lo) &&
        d <= static_cast<double>(hi))
      return static_cast<int64_t>(d);
  }
  expected(param, what, v);
}

int64_t as_integer(const json& v, const std::string& param, int64_t lo, int64_t hi) {
  return as_integer(v, param, lo, hi, fmt::format("an integer from {} to {}", lo, hi));
}

// Brackets outside strings, counted before parsing: nlohmann's parser is iterative, but copying,
// comparing and dumping a document recurse once per level.
bool nested_deeper_than(std::string_view text, int limit) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

json parse_body(std::string_view body) {
  if (nested_deeper_than(body, kMaxJsonDepth))
    reject("", fmt::format("the request body is nested deeper than {} levels", kMaxJsonDepth));
  json doc;
  try {
    doc = json::parse(body.begin(), body.end());
  } catch (const json::parse_error& e) {
    // what() is "[json.exception.parse_error.101] parse error at line 1, column 9: ..."; keep from "parse".
    std::string_view what = e.what();
    if (const size_t start = what.find("] "); start != std::string_view::npos) what.remove_prefix(start + 2);
    reject("", fmt::format("the request body is not valid JSON (byte {}): {}", e.byte, what));
  } catch (const json::out_of_range& e) {
    // 1e400 is valid JSON, but no double holds it; nlohmann names the number, not the field.
    std::string_view what = e.what();
    if (const size_t start = what.find("] "); start != std::string_view::npos) what.remove_prefix(start + 2);
    reject("", fmt::format("the request body holds a number out of range: {}", what));
  }
  if (!doc.is_object())
    reject("", fmt::format("the request body must be a JSON object; found {}", describe(doc)));
  return doc;
}

uint64_t random_seed() {
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ device();
}

void parse_seed(const json& body, GenerationOptions& o) {
  const json* v = get(body, "seed");
  if (v != nullptr && v->is_number_unsigned()) {
    o.sampling.seed = v->get<uint64_t>();
    o.seed_from_client = true;
    return;
  }
  if (v != nullptr) {
    const int64_t s = as_integer(*v, "seed", std::numeric_limits<int64_t>::min(),
                                 std::numeric_limits<int64_t>::max(), "an integer");
    if (s != -1) {  // -1: llama.cpp's "random"
      o.sampling.seed = static_cast<uint64_t>(s);
      o.seed_from_client = true;
      return;
    }
  }
  o.sampling.seed = random_seed();
}

void parse_stop(const json& body, GenerationOptions& o) {
  const json* v = get(body, "stop");
  if (v == nullptr) return;
  if (v->is_string()) {
    if (!v->get_ref<const std::string&>().empty()) o.stop.push_back(v->get<std::string>());
    return;
  }
  if (!v->is_array()) expected("stop", "a string or an array of strings", *v);
  if (v->size() > static_cast<size_t>(kMaxStopStrings))
    reject("stop", fmt::format("`stop` takes at most {} strings; found {}", kMaxStopStrings, v->size()));
  for (size_t i = 0; i < v->size(); ++i) {
    std::string s = as_string((*v)[i], index_path("stop", i));
    if (!s.empty()) o.stop.push_back(std::move(s));
  }
}

// A decimal token id, as JSON object keys carry them: digits only, at most int32's maximum.
std::optional<int32_t> token_id_key(const std::string& key) {
  if (key.empty() || key.size() > 10) return std::nullopt;
  int64_t id = 0;
  for (const char c : key) {
    if (c < '0' || c > '9') return std::nullopt;
    id = id * 10 + (c - '0');
  }
  if (id > kInt32Max) return std::nullopt;
  return static_cast<int32_t>(id);
}

void parse_logit_bias(const json& body, GenerationOptions& o) {
  const json* v = get(body, "logit_bias");
  if (v == nullptr) return;
  if (!v->is_object()) expected("logit_bias", "an object mapping token ids to numbers from -100 to 100", *v);
  for (const auto& [key, bias] : v->items()) {
    const std::optional<int32_t> id = token_id_key(key);
    if (!id)
      reject("logit_bias",
             fmt::format("`logit_bias` keys must be token ids (integers from 0 to {}); found the key {}",
                         kInt32Max, quoted(key)));
    const double b =
        as_number(bias, fmt::format("logit_bias.{}", key), -100, 100, false, "a number from -100 to 100");
    // OpenAI: -100 "should result in a ban"; a finite bias could still lose to a very confident logit.
    const float added = b <= -100 ? -std::numeric_limits<float>::infinity() : static_cast<float>(b);
    o.sampling.logit_bias.emplace_back(*id, added);
  }
}

void parse_stream(const json& body, GenerationOptions& o) {
  if (const json* v = get(body, "stream")) o.stream = as_bool(*v, "stream");
  const json* so = get(body, "stream_options");
  if (so == nullptr) return;
  if (!so->is_object()) expected("stream_options", "an object", *so);
  if (const json* v = get(*so, "include_usage"))
    o.include_usage = as_bool(*v, "stream_options.include_usage");
}

GenerationOptions parse_options(const json& body) {
  GenerationOptions o;
  if (const json* v = get(body, "model")) o.model = as_string(*v, "model");

  // Both names are read (and checked); the newer one wins when both are given.
  if (const json* v = get(body, "max_tokens"))
    o.max_tokens = static_cast<int32_t>(as_integer(*v, "max_tokens", 1, kInt32Max));
  if (const json* v = get(body, "max_completion_tokens"))
    o.max_tokens = static_cast<int32_t>(as_integer(*v, "max_completion_tokens", 1, kInt32Max));

  sample::SamplingParams& s = o.sampling;
  if (const json* v = get(body, "temperature"))
    s.temperature = static_cast<float>(as_number(*v, "temperature", 0, 2, false, "a number from 0 to 2"));
  if (const json* v = get(body, "top_p"))
    s.top_p = static_cast<float>(as_number(*v, "top_p", 0, 1, true, "a number above 0 and at most 1"));
  if (const json* v = get(body, "top_k")) s.top_k = static_cast<int>(as_integer(*v, "top_k", 0, kInt32Max));
  if (const json* v = get(body, "min_p"))
    s.min_p = static_cast<float>(as_number(*v, "min_p", 0, 1, false, "a number from 0 to 1"));
  if (const json* v = get(body, "presence_penalty"))
    s.presence_penalty =
        static_cast<float>(as_number(*v, "presence_penalty", -2, 2, false, "a number from -2 to 2"));
  if (const json* v = get(body, "frequency_penalty"))
    s.frequency_penalty =
        static_cast<float>(as_number(*v, "frequency_penalty", -2, 2, false, "a number from -2 to 2"));
  if (const json* v = get(body, "repetition_penalty"))
    s.repeat_penalty = static_cast<float>(
        as_number(*v, "repetition_penalty", 0, std::numeric_limits<float>::max(), true, "a number above 0"));
  parse_seed(body, o);
  parse_logit_bias(body, o);
  parse_stop(body, o);

  if (const json* v = get(body, "n")) o.n = static_cast<int>(as_integer(*v, "n", 1, kMaxChoices));
  parse_stream(body, o);
  if (const json* v = get(body, "ignore_eos")) o.ignore_eos = as_bool(*v, "ignore_eos");
  if (const json* v = get(body, "user")) o.user = as_string(*v, "user");
  return o;
}

// A message's content as one string: a string, or text parts joined with "\n".
std::string content_text(const json& c, const std::string& param) {
  if (c.is_string()) return c.get<std::string>();
  if (!c.is_array()) expected(param, "a string or an array of content parts", c);
  std::string text;
  for (size_t i = 0; i < c.size(); ++i) {
    const json& part = c[i];
    const std::string p = index_path(param, i);
    if (!part.is_object()) expected(p, "a content part object ({\"type\":\"text\",\"text\":...})", part);
    const json* type = get(part, "type");
    if (type == nullptr) reject(key_path(p, "type"), fmt::format("`{}.type` is required", p));
    const std::string t = as_string(*type, key_path(p, "type"));
    if (t != "text")
      reject(key_path(p, "type"),
             fmt::format("`{}.type` is {}; only \"text\" content parts are supported", p, describe(*type)));
    const json* part_text = get(part, "text");
    if (part_text == nullptr) reject(key_path(p, "text"), fmt::format("`{}.text` is required", p));
    if (i > 0) text += '\n';
    text += as_string(*part_text, key_path(p, "text"));
  }
  return text;
}

json normalise_tool_calls(const json& calls, const std::string& param) {
  if (!calls.is_array()) expected(param, "an array of tool calls", calls);
  json out = json::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    const json& call = calls[i];
    const std::string p = index_path(param, i);
    if (!call.is_object()) expected(p, "a tool call object", call);
    json entry = json::object();
    if (const json* id = get(call, "id")) entry["id"] = as_string(*id, key_path(p, "id"));
    if (const json* type = get(call, "type");
        type != nullptr && as_string(*type, key_path(p, "type")) != "function")
      expected(key_path(p, "type"), "\"function\"", *type);
    entry["type"] = "function";
    const std::string fp = key_path(p, "function");
    const json* fn = get(call, "function");
    if (fn == nullptr) reject(fp, fmt::format("`{}` is required", fp));
    if (!fn->is_object()) expected(fp, "an object", *fn);
    const json* name = get(*fn, "name");
    if (name == nullptr) reject(key_path(fp, "name"), fmt::format("`{}.name` is required", fp));
    json function = json::object();
    function["name"] = as_string(*name, key_path(fp, "name"));
    // The templates paste the arguments as text; a client that sent them as an object gets them as JSON.
    std::string arguments;
    if (const json* args = get(*fn, "arguments")) {
      if (args->is_object()) {
        arguments = args->dump(-1, ' ', false, json::error_handler_t::replace);
      } else {
        arguments = as_string(*args, key_path(fp, "arguments"));
      }
    }
    function["arguments"] = std::move(arguments);
    entry["function"] = std::move(function);
    out.push_back(std::move(entry));
  }
  return out;
}

json normalise_message(const json& m, const std::string& p) {
  if (!m.is_object()) expected(p, "a message object", m);
  const json* role_v = get(m, "role");
  if (role_v == nullptr) reject(key_path(p, "role"), fmt::format("`{}.role` is required", p));
  std::string role = as_string(*role_v, key_path(p, "role"));
  if (role == "developer") role = "system";  // OpenAI's newer name; the templates know only system
  if (role != "system" && role != "user" && role != "assistant" && role != "tool")
    expected(key_path(p, "role"), "one of \"system\", \"user\", \"assistant\", \"tool\", \"developer\"",
             *role_v);
  const bool assistant = role == "assistant";

  json tool_calls;
  if (const json* tc = get(m, "tool_calls"); tc != nullptr && assistant) {
    tool_calls = normalise_tool_calls(*tc, key_path(p, "tool_calls"));
    if (tool_calls.empty()) tool_calls = nullptr;  // clients send [] for none
  }

  json out = json::object();
  out["role"] = role;
  if (const json* c = get(m, "content")) {
    out["content"] = content_text(*c, key_path(p, "content"));
  } else if (assistant) {
    // No text: null beside tool calls (what the templates test), else an empty answer.
    out["content"] = tool_calls.is_null() ? json("") : json(nullptr);
  } else {
    reject(key_path(p, "content"), fmt::format("`{}.content` is required for role \"{}\"", p, role));
  }
  if (const json* name = get(m, "name")) out["name"] = as_string(*name, key_path(p, "name"));
  if (!tool_calls.is_null()) out["tool_calls"] = std::move(tool_calls);
  if (const json* rc = get(m, "reasoning_content"); rc != nullptr && assistant)
    out["reasoning_content"] = as_string(*rc, key_path(p, "reasoning_content"));
  if (const json* id = get(m, "tool_call_id"); id != nullptr && role == "tool")
    out["tool_call_id"] = as_string(*id, key_path(p, "tool_call_id"));
  return out;
}

json parse_messages(const json& body) {
  const json* v = get(body, "messages");
  if (v == nullptr) reject("messages", "`messages` is required");
  if (!v->is_array()) expected("messages", "an array of messages", *v);
  if (v->empty()) reject("messages", "`messages` must not be empty");
  json out = json::array();
  for (size_t i = 0; i < v->size(); ++i) out.push_back(normalise_message((*v)[i], index_path("messages", i)));
  return out;
}

json parse_tools(const json& body) {
  json out = json::array();
  const json* v = get(body, "tools");
  if (v == nullptr) return out;
  if (!v->is_array()) expected("tools", "an array of tools", *v);
  for (size_t i = 0; i < v->size(); ++i) {
    const json& tool = (*v)[i];
    const std::string p = index_path("tools", i);
    if (!tool.is_object()) expected(p, "a tool object", tool);
    if (const json* type = get(tool, "type");
        type != nullptr && as_string(*type, key_path(p, "type")) != "function")
      expected(key_path(p, "type"), "\"function\" (the only tool type)", *type);
    const std::string fp = key_path(p, "function");
    const json* fn = get(tool, "function");
    if (fn == nullptr) reject(fp, fmt::format("`{}` is required", fp));
    if (!fn->is_object()) expected(fp, "an object", *fn);
    json function = json::object();
    const json* name = get(*fn, "name");
    if (name == nullptr) reject(key_path(fp, "name"), fmt::format("`{}.name` is required", fp));
    function["name"] = as_string(*name, key_path(fp, "name"));
    if (function["name"].get_ref<const std::string&>().empty())
      reject(key_path(fp, "name"), fmt::format("`{}.name` must not be empty", fp));
    if (const json* d = get(*fn, "description"))
      function["description"] = as_string(*d, key_path(fp, "description"));
    if (const json* params = get(*fn, "parameters")) {
      if (!params->is_object()) expected(key_path(fp, "parameters"), "a JSON Schema object", *params);
      function["parameters"] = *params;
    }
    if (const json* strict = get(*fn, "strict"))
      function["strict"] = as_bool(*strict, key_path(fp, "strict"));
    out.push_back(json{{"type", "function"}, {"function", std::move(function)}});
  }
  return out;
}

bool names_a_tool(const json& tools, const std::string& name) {
  for (const json& tool : tools)
    if (tool.at("function").at("name") == name) return true;
  return false;
}

ToolChoice parse_tool_choice(const json& body, const json& tools) {
  ToolChoice choice;
  const json* v = get(body, "tool_choice");
  if (v == nullptr) return choice;
  constexpr std::string_view kWhat =
      "\"none\", \"auto\", \"required\" or {\"type\":\"function\",\"function\":{\"name\":...}}";
  if (v->is_string()) {
    const auto& s = v->get_ref<const std::string&>();
    if (s == "none") {
      choice.mode = ToolChoice::Mode::kNone;
    } else if (s == "auto") {
      choice.mode = ToolChoice::Mode::kAuto;
    } else if (s == "required") {
      choice.mode = ToolChoice::Mode::kRequired;
    } else {
      expected("tool_choice", kWhat, *v);
    }
  } else if (v->is_object()) {
    if (const json* type = get(*v, "type");
        type != nullptr && as_string(*type, "tool_choice.type") != "function")
      expected("tool_choice.type", "\"function\"", *type);
    const json* fn = get(*v, "function");
    if (fn == nullptr || !fn->is_object())
      expected("tool_choice.function", "an object with a name", fn ? *fn : json());
    const json* name = get(*fn, "name");
    if (name == nullptr) reject("tool_choice.function.name", "`tool_choice.function.name` is required");
    choice.mode = ToolChoice::Mode::kFunction;
    choice.function = as_string(*name, "tool_choice.function.name");
    if (!names_a_tool(tools, choice.function))
      reject("tool_choice.function.name",
             fmt::format("`tool_choice.function.name` is {}, which names none of `tools`", describe(*name)));
  } else {
    expected("tool_choice", kWhat, *v);
  }
  if (choice.mode == ToolChoice::Mode::kRequired && tools.empty())
    reject("tool_choice", "`tool_choice` \"required\" needs `tools`");
  return choice;
}

void parse_response_format(const json& body) {
  const json* v = get(body, "response_format");
  if (v == nullptr) return;
  if (!v->is_object()) expected("response_format", "an object", *v);
  const json* type = get(*v, "type");
  if (type == nullptr) reject("response_format.type", "`response_format.type` is required");
  const std::string t = as_string(*type, "response_format.type");
  if (t != "text")
    reject(
        "response_format.type",
        fmt::format("`response_format.type` {} is not supported (no constrained decoding); only \"text\" is",
                    describe(*type)));
}

ChatRequest parse_chat(const json& body) {
  ChatRequest r;
  r.options = parse_options(body);
  r.messages = parse_messages(body);
  r.tools = parse_tools(body);
  r.tool_choice = parse_tool_choice(body, r.tools);
  if (const json* v = get(body, "parallel_tool_calls"))
    r.parallel_tool_calls = as_bool(*v, "parallel_tool_calls");
  if (const json* v = get(body, "logprobs")) r.logprobs = as_bool(*v, "logprobs");
  if (const json* v = get(body, "top_logprobs")) {
    r.top_logprobs = static_cast<int>(as_integer(*v, "top_logprobs", 0, kMaxTopLogprobs));
    if (r.top_logprobs > 0 && !r.logprobs)
      reject("top_logprobs", "`top_logprobs` needs `logprobs` set to true");
  }
  if (const json* v = get(body, "reasoning_format")) {
    const std::string f = as_string(*v, "reasoning_format");
    if (f == "deepseek" || f == "auto") {
      r.reasoning_format = ReasoningFormat::kDeepseek;
    } else if (f == "none") {
      r.reasoning_format = ReasoningFormat::kNone;
    } else {
      expected("reasoning_format", "\"deepseek\", \"auto\" or \"none\"", *v);
    }
  }
  if (const json* v = get(body, "chat_template_kwargs")) {
    if (!v->is_object()) expected("chat_template_kwargs", "an object", *v);
    r.chat_template_kwargs = *v;
  }
  parse_response_format(body);
  return r;
}

// A token id of a prompt; the vocabulary size is checked where it is known.
int32_t prompt_token(const json& v, const std::string& param) {
  return static_cast<int32_t>(as_integer(v, param, 0, kInt32Max));
}

void parse_prompt(const json& body, CompletionRequest& r) {
  const json* v = get(body, "prompt");
  if (v == nullptr) reject("prompt", "`prompt` is required");
  constexpr std::string_view kWhat = "a string, an array of one string or an array of token ids";
  if (v->is_string()) {
    r.prompt = v->get<std::string>();
    return;
  }
  if (!v->is_array()) expected("prompt", kWhat, *v);
  if (v->empty()) reject("prompt", "`prompt` must not be an empty array");
  const json& first = (*v)[0];
  if (first.is_number()) {
    r.prompt_is_tokens = true;
    for (size_t i = 0; i < v->size(); ++i)
      r.prompt_tokens.push_back(prompt_token((*v)[i], index_path("prompt", i)));
    return;
  }
  if (v->size() > 1)
    reject("prompt",
           fmt::format("`prompt` holds {} prompts; only one prompt per request is supported", v->size()));
  if (first.is_string()) {
    r.prompt = first.get<std::string>();
  } else if (first.is_array()) {
    if (first.empty()) reject("prompt[0]", "`prompt[0]` must not be an empty array");
    r.prompt_is_tokens = true;
    for (size_t i = 0; i < first.size(); ++i)
      r.prompt_tokens.push_back(prompt_token(first[i], index_path("prompt[0]", i)));
  } else {
    expected("prompt[0]", "a string or an array of token ids", first);
  }
}

CompletionRequest parse_completion(const json& body) {
  CompletionRequest r;
  r.options = parse_options(body);
  parse_prompt(body, r);
  if (const json* v = get(body, "logprobs"))
    r.logprobs = static_cast<int>(as_integer(*v, "logprobs", 0, kMaxTopLogprobs));
  if (const json* v = get(body, "echo"); v != nullptr && as_bool(*v, "echo"))
    reject("echo", "`echo` is not supported");
  if (const json* v = get(body, "suffix"); v != nullptr && !as_string(*v, "suffix").empty())
    reject("suffix", "`suffix` is not supported");
  if (const json* v = get(body, "best_of")) {
    if (as_integer(*v, "best_of", 1, kMaxChoices) != r.options.n)
      reject("best_of", "`best_of` other than `n` is not supported");
  }
  return r;
}

template <class Request, class Parse>
ApiResult<Request> guarded(std::string_view body, Parse parse) {
  try {
    return parse(parse_body(body));
  } catch (const Rejection& r) {
    return r.error;
  } catch (const json::exception& e) {
    // A check above let through a value it then misread: still the client's request, still a 400.
    return ApiError::invalid_request("", fmt::format("the request could not be read: {}", e.what()));
  }
}

}  // namespace

sample::SamplingParams GenerationOptions::openai_default_sampling() {
  sample::SamplingParams s;
  s.temperature = 1.0f;
  s.top_k = 0;
  s.top_p = 1.0f;
  s.min_p = 0.0f;
  s.repeat_penalty = 1.0f;
  s.presence_penalty = 0.0f;
  s.frequency_penalty = 0.0f;
  return s;
}

sample::SamplingParams sampling_for_choice(const GenerationOptions& options, int index) {
  sample::SamplingParams s = options.sampling;
  s.seed += static_cast<uint64_t>(index);
  return s;
}

ApiResult<ChatRequest> parse_chat_request(std::string_view body) {
  return guarded<ChatRequest>(body, parse_chat);
}

ApiResult<CompletionRequest> parse_completion_request(std::string_view body) {
  return guarded<CompletionRequest>(body, parse_completion);
}

}  // namespace onecard::serve
