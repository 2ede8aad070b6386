#include "convert/hf_tokenizer.h"

#include <filesystem>
#include <map>
#include <string_view>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "convert/checkpoint.h"
#include "text/pretokenize.h"

namespace onecard::convert {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// tokenizer.ggml.token_type values (text::TokenType).
constexpr int32_t kNormal = 1, kControl = 3, kUserDefined = 4, kUnused = 5;

struct KnownPre {
  std::string_view name;
  std::vector<std::string_view> regexes;  // the Split stages of tokenizer.json, exactly as written there
};

// The pre-tokenizers text::PreTokenizer implements, by the regexes their published tokenizer.json files hold.
const std::vector<KnownPre>& known_pre_tokenizers() {
  static const std::vector<KnownPre> known{
      {"deepseek-v3",
       {R"(\p{N}{1,3})", "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
        R"RX([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)RX"}},
  };
  return known;
}

// A token spelled in tokenizer_config.json: a string, or an AddedToken object {"content": ...}.
std::optional<std::string> token_text(const json& cfg, const char* key) {
  if (!cfg.contains(key)) return std::nullopt;
  const json& v = cfg[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return std::nullopt;
}

// Published files write line breaks in their regexes both as the characters themselves and as \r, \n
// escapes, which match the same; the table holds the escapes.
std::string escape_line_breaks(const std::string& regex) {
  std::string out;
  for (char ch : regex) {
    if (ch == '\r') {
      out += "\\r";
    } else if (ch == '\n') {
      out += "\\n";
    } else {
      out += ch;
    }
  }
  return out;
}

Status collect_splits(const json& pre, const std::string& at, std::vector<std::string>& regexes,
                      bool& byte_regex) {
  if (pre.is_null()) return {};
  if (!pre.is_object() || !pre.contains("type") || !pre["type"].is_string())
    return make_error("{}: a pre_tokenizer entry has no 'type'", at);
  const std::string type = pre["type"].get<std::string>();
  if (type == "Sequence") {
    if (!pre.contains("pretokenizers") || !pre["pretokenizers"].is_array())
      return make_error("{}: pre_tokenizer Sequence has no 'pretokenizers' array", at);
    for (const json& p : pre["pretokenizers"]) ONECARD_TRY(collect_splits(p, at, regexes, byte_regex));
  } else if (type == "Split") {
    const json* pattern = pre.contains("pattern") ? &pre["pattern"] : nullptr;
    if (pattern == nullptr || !pattern->is_object() || !pattern->contains("Regex") ||
        !(*pattern)["Regex"].is_string())
      return make_error("{}: pre_tokenizer Split has no 'pattern.Regex' string", at);
    regexes.push_back((*pattern)["Regex"].get<std::string>());
  } else if (type == "ByteLevel") {
    byte_regex =
        !pre.contains("use_regex") || (pre["use_regex"].is_boolean() && pre["use_regex"].get<bool>());
  } else if (type != "Digits" && type != "Punctuation") {
    return make_error("{}: pre_tokenizer type '{}' is not supported", at, type);
  }
  return {};
}

}  // namespace

Result<std::string> recognise_pre_tokenizer(const std::vector<std::string>& splits, bool byte_level_regex) {
  if (splits.empty()) {
    if (byte_level_regex) return std::string("gpt2");
    return make_error("the pre-tokenizer has no split at all");
  }
  for (const KnownPre& k : known_pre_tokenizers()) {
    if (k.regexes.size() != splits.size() || byte_level_regex) continue;
    bool same = true;
    for (size_t i = 0; i < splits.size(); ++i) same = same && k.regexes[i] == escape_line_breaks(splits[i]);
    if (same) return std::string(k.name);
  }
  return make_error(
      "pre-tokenizer not recognised from its Split regexes {} (known: deepseek-v3, gpt2; --pre "
      "names one)",
      json(splits).dump());
}

Result<HfTokenizer> read_hf_tokenizer(const std::string& dir, uint32_t n_vocab,
                                      const std::string& pre_override) {
  const std::string path = (fs::path(dir) / "tokenizer.json").string();
  ONECARD_ASSIGN_OR_RETURN(const json tj, read_json_file(path));
  if (!tj.is_object() || !tj.contains("model") || !tj["model"].is_object())
    return make_error("{}: field 'model' is missing or not an object", path);
  const json& model = tj["model"];
  if (!model.contains("type") || model["type"] != "BPE")
    return make_error("{}: field 'model.type' is not BPE (only byte-level BPE tokenizers are converted)",
                      path);
  if (!model.contains("vocab") || !model["vocab"].is_object())
    return make_error("{}: field 'model.vocab' is missing or not an object", path);

  std::map<int64_t, std::pair<std::string, int32_t>> by_id;  // id -> (text, type)
  for (const auto& [text, id] : model["vocab"].items()) {
    if (!id.is_number_unsigned() || id.get<uint64_t>() >= (1u << 24))
      return make_error("{}: field 'model.vocab': token '{}' has id {}, not a valid id", path, text,
                        id.dump());
    const int64_t i = id.get<int64_t>();
    if (by_id.count(i) != 0)
      return make_error("{}: field 'model.vocab': id {} is used by '{}' and '{}'", path, i, by_id[i].first,
                        text);
    by_id[i] = {text, kNormal};
  }
  if (tj.contains("added_tokens")) {
    if (!tj["added_tokens"].is_array()) return make_error("{}: field 'added_tokens' is not an array", path);
    for (const json& a : tj["added_tokens"]) {
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_unsigned() || !a.contains("content") ||
          !a["content"].is_string() || a["id"].get<uint64_t>() >= (1u << 24))
        return make_error("{}: field 'added_tokens': an entry lacks a valid 'id' or 'content'", path);
      const bool special = a.contains("special") && a["special"].is_boolean() && a["special"].get<bool>();
      by_id[a["id"].get<int64_t>()] = {a["content"].get<std::string>(), special ? kControl : kUserDefined};
    }
  }
  HfTokenizer t;
  const int64_t size = std::max<int64_t>(n_vocab, by_id.empty() ? 0 : by_id.rbegin()->first + 1);
  t.tokens.resize(static_cast<size_t>(size));
  t.types.assign(static_cast<size_t>(size), kUnused);
  for (int64_t i = 0; i < size; ++i) t.tokens[static_cast<size_t>(i)] = fmt::format("[PAD{}]", i);
  for (const auto& [id, tt] : by_id) {
    t.tokens[static_cast<size_t>(id)] = tt.first;
    t.types[static_cast<size_t>(id)] = tt.second;
  }

  if (model.contains("merges")) {
    if (!model["merges"].is_array()) return make_error("{}: field 'model.merges' is not an array", path);
    // Older files write a merge as "left right", newer ones as ["left", "right"].
    for (const json& mj : model["merges"]) {
      if (mj.is_string()) {
        t.merges.push_back(mj.get<std::string>());
      } else if (mj.is_array() && mj.size() == 2 && mj[0].is_string() && mj[1].is_string()) {
        t.merges.push_back(mj[0].get<std::string>() + " " + mj[1].get<std::string>());
      } else {
        return make_error("{}: field 'model.merges' holds {}, not a merge", path, mj.dump());
      }
    }
  }

  if (!pre_override.empty()) {
    // A name the tokenizer does not implement would only fail when the model is loaded.
    auto known = text::PreTokenizer::create(pre_override);
    if (!known.ok()) return known.error();
    t.pre = pre_override;
  } else {
    std::vector<std::string> splits;
    bool byte_regex = false;
    ONECARD_TRY(collect_splits(tj.contains("pre_tokenizer") ? tj["pre_tokenizer"] : json(), path, splits,
                               byte_regex));
    auto pre = recognise_pre_tokenizer(splits, byte_regex);
    if (!pre.ok()) return pre.error().with_context(path);
    t.pre = pre.value();
  }

  const std::string cfg_path = (fs::path(dir) / "tokenizer_config.json").string();
  json cfg = json::object();
  if (fs::exists(cfg_path)) {
    ONECARD_ASSIGN_OR_RETURN(cfg, read_json_file(cfg_path));
    if (!cfg.is_object()) return make_error("{}: not a JSON object", cfg_path);
  }
  const auto id_of = [&](const char* key) -> Result<int64_t> {
    const auto text = token_text(cfg, key);
    if (!text) return int64_t{-1};
    for (size_t i = 0; i < t.tokens.size(); ++i)
      if (t.tokens[i] == *text) return static_cast<int64_t>(i);
    return make_error("{}: field '{}': token '{}' is not in the vocabulary", cfg_path, key, *text);
  };
  ONECARD_ASSIGN_OR_RETURN(t.bos, id_of("bos_token"));
  ONECARD_ASSIGN_OR_RETURN(t.eos, id_of("eos_token"));
  ONECARD_ASSIGN_OR_RETURN(t.pad, id_of("pad_token"));
  if (cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean())
    t.add_bos = cfg["add_bos_token"].get<bool>();
  if (cfg.contains("add_eos_token") && cfg["add_eos_token"].is_boolean())
    t.add_eos = cfg["add_eos_token"].get<bool>();
  if (cfg.contains("chat_template")) {
    const json& ct = cfg["chat_template"];
    if (ct.is_string()) {
      t.chat_template = ct.get<std::string>();
    } else if (ct.is_array()) {  // named templates: the default one is the chat template
      for (const json& e : ct)
        if (e.is_object() && e.contains("name") && e["name"] == "default" && e.contains("template") &&
            e["template"].is_string())
          t.chat_template = e["template"].get<std::string>();
    } else if (!ct.is_null()) {
      return make_error("{}: field 'chat_template' is neither a string nor a list of named templates",
                        cfg_path);
    }
  }
  return t;
}

void put_tokenizer_metadata(gguf::Writer& w, const HfTokenizer& t) {
  using gguf::MetaValue;
  w.set("tokenizer.ggml.model", MetaValue::string("gpt2"));
  w.set("tokenizer.ggml.pre", MetaValue::string(t.pre));
  w.set("tokenizer.ggml.tokens", MetaValue::strings(t.tokens));
  w.set("tokenizer.ggml.token_type", MetaValue::i32s(t.types));
  w.set("tokenizer.ggml.merges", MetaValue::strings(t.merges));
  if (t.bos >= 0) w.set("tokenizer.ggml.bos_token_id", MetaValue::u32(static_cast<uint32_t>(t.bos)));
  if (t.eos >= 0) w.set("tokenizer.ggml.eos_token_id", MetaValue::u32(static_cast<uint32_t>(t.eos)));
  if (t.pad >= 0) w.set("tokenizer.ggml.padding_token_id", MetaValue::u32(static_cast<uint32_t>(t.pad)));
  w.set("tokenizer.ggml.add_bos_token", MetaValue::boolean(t.add_bos));
  w.set("tokenizer.ggml.add_eos_token", MetaValue::boolean(t.add_eos));
  if (!t.chat_template.empty()) w.set("tokenizer.chat_template", MetaValue::string(t.chat_template));
}

}  // namespace onecard::convert
