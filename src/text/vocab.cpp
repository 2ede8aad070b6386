#include "text/vocab.h"

namespace onecard::text {
namespace {

Result<std::vector<std::string>> read_strings(const gguf::File& file, std::string_view key) {
  const gguf::Value* v = file.find(key);
  if (v == nullptr) return make_error("{}: missing metadata key '{}'", file.path(), key);
  if (!v->is_array() || v->array_type() != gguf::ValueType::STRING) {
    return make_error("{}: '{}' should be an array of strings, found {}", file.path(), key,
                      v->type_description());
  }
  return std::vector<std::string>(v->strings().begin(), v->strings().end());
}

// A special token id: an absent key leaves `id` as it is; a present one must name a token.
Status read_id(const gguf::File& file, std::string_view key, int32_t n_vocab, int32_t& id) {
  if (!file.has(key)) return {};
  ONECARD_ASSIGN_OR_RETURN(const int64_t v, file.get<int64_t>(key));
  if (v < 0 || v >= n_vocab) {
    return make_error("{}: '{}' is {}, outside the vocabulary of {} tokens", file.path(), key, v, n_vocab);
  }
  id = static_cast<int32_t>(v);
  return {};
}

}  // namespace

Result<Vocab> Vocab::from_gguf(const gguf::File& file) {
  Vocab v;
  ONECARD_ASSIGN_OR_RETURN(v.model, file.get<std::string>("tokenizer.ggml.model"));
  const bool spm = v.model == "llama";
  if (!spm && v.model != "gpt2") {
    return make_error("{}: unsupported tokenizer model '{}' (tokenizer.ggml.model); supported: gpt2, llama",
                      file.path(), v.model);
  }
  ONECARD_ASSIGN_OR_RETURN(v.pre, file.get_or<std::string>("tokenizer.ggml.pre", ""));
  ONECARD_ASSIGN_OR_RETURN(v.texts, read_strings(file, "tokenizer.ggml.tokens"));
  const auto n = static_cast<int32_t>(v.texts.size());
  if (v.texts.size() != static_cast<size_t>(n) || n == 0) {
    return make_error("{}: tokenizer.ggml.tokens has {} entries", file.path(), v.texts.size());
  }

  v.types.assign(v.texts.size(), TokenType::kNormal);
  if (const gguf::Value* t = file.find("tokenizer.ggml.token_type")) {
    auto types = t->to_vector<int32_t>();
    if (!types.ok())
      return types.error().with_context(fmt::format("{}: tokenizer.ggml.token_type", file.path()));
    if (types->size() != v.texts.size()) {
      return make_error("{}: tokenizer.ggml.token_type has {} entries for {} tokens", file.path(),
                        types->size(), n);
    }
    for (int32_t i = 0; i < n; ++i) {
      const int32_t type = (*types)[i];
      if (type < 0 || type > static_cast<int32_t>(TokenType::kByte)) {
        return make_error("{}: tokenizer.ggml.token_type of token {} is {}, not a known type (0..6)",
                          file.path(), i, type);
      }
      v.types[i] = static_cast<TokenType>(type);
    }
  }

  v.scores.assign(v.texts.size(), 0.0f);
  if (const gguf::Value* s = file.find("tokenizer.ggml.scores")) {
    auto scores = s->to_vector<float>();
    if (!scores.ok())
      return scores.error().with_context(fmt::format("{}: tokenizer.ggml.scores", file.path()));
    if (scores->size() != v.texts.size()) {
      return make_error("{}: tokenizer.ggml.scores has {} entries for {} tokens", file.path(), scores->size(),
                        n);
    }
    v.scores = std::move(scores).value();
  }

  if (!spm) {
    ONECARD_ASSIGN_OR_RETURN(v.merges, read_strings(file, "tokenizer.ggml.merges"));
  }

  // SentencePiece files of the llama family often leave out the ids of <unk>, <s> and </s>: 0, 1 and 2.
  if (spm) {
    v.unk = n > 0 ? 0 : -1;
    v.bos = n > 1 ? 1 : -1;
    v.eos = n > 2 ? 2 : -1;
  }
  ONECARD_TRY(read_id(file, "tokenizer.ggml.bos_token_id", n, v.bos));
  ONECARD_TRY(read_id(file, "tokenizer.ggml.eos_token_id", n, v.eos));
  ONECARD_TRY(read_id(file, "tokenizer.ggml.eot_token_id", n, v.eot));
  ONECARD_TRY(read_id(file, "tokenizer.ggml.eom_token_id", n, v.eom));
  ONECARD_TRY(read_id(file, "tokenizer.ggml.unknown_token_id", n, v.unk));
  ONECARD_TRY(read_id(file, "tokenizer.ggml.padding_token_id", n, v.pad));
  ONECARD_ASSIGN_OR_RETURN(v.add_bos, file.get_or<bool>("tokenizer.ggml.add_bos_token", spm));
  ONECARD_ASSIGN_OR_RETURN(v.add_eos, file.get_or<bool>("tokenizer.ggml.add_eos_token", false));
  ONECARD_ASSIGN_OR_RETURN(v.add_space_prefix, file.get_or<bool>("tokenizer.ggml.add_space_prefix", spm));
  return v;
}

}  // namespace onecard::text
