#include "text/pretokenize.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <vector>

namespace onecard::text {
namespace {

// The split expressions, stage by stage, as the published tokenizers define them (tokenizer.json "Split"
// pre-tokenizers; the same lists llama.cpp uses per `tokenizer.ggml.pre`). Code points are written as \x{...}
// so that no Unicode normalisation of this source can change them (several ranges end on compatibility
// characters such as U+2126 OHM SIGN, which NFC would turn into U+03A9).

// GPT-2: contractions, letters, digits, other symbols, each with an optional leading space; whitespace runs
// leave their last space to the next word.
constexpr std::string_view kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

constexpr std::string_view kCjk = R"([\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+)";

// DeepSeek LLM (V1/V2): cased letters of many scripts, ASCII and full-width punctuation, trailing whitespace,
// CJK and Hangul runs, digit runs.
constexpr std::string_view kDeepSeekLlmLetters =
    R"(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF})"
    R"(\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1})"
    R"(\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5})"
    R"(\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A})"
    R"(\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B})"
    R"(\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC})"
    R"(\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107})"
    R"(\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134})"
    R"(\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4})"
    R"(\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787})"
    R"(\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A})"
    R"(\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2})"
    R"(\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+)";
constexpr std::string_view kDeepSeekLlmPunct =
    R"(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)";

// DeepSeek-V3/R1: digit groups of up to three, CJK and kana runs, then a GPT-4-like split.
constexpr std::string_view kDeepSeekV3Words =
    R"RX([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+)RX"
    R"RX(| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)RX";

struct Known {
  std::string_view name;
  std::vector<std::string_view> patterns;
};

const std::array<Known, 6>& known_pretokenizers() {
  static const std::array<Known, 6> known{{
      {"deepseek-v3",
       {R"(\p{N}{1,3})", R"([\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)", kDeepSeekV3Words}},
      {"deepseek-llm", {R"([\r\n])", kDeepSeekLlmLetters, kDeepSeekLlmPunct, R"(\s+$)", kCjk, R"(\p{N}+)"}},
      {"deepseek-coder", {R"([\r\n])", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kCjk, R"(\p{N})"}},
      {"gpt2", {kGpt2}},
      {"default", {kGpt2}},
      {"", {kGpt2}},
  }};
  return known;
}

std::string pcre2_message(int code) {
  std::array<PCRE2_UCHAR, 256> buf{};
  pcre2_get_error_message(code, buf.data(), buf.size());
  return std::string(reinterpret_cast<const char*>(buf.data()));
}

size_t utf8_char_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  return 2;
}

}  // namespace

struct PreTokenizer::Stage {
  pcre2_code* code = nullptr;
  ~Stage() { pcre2_code_free(code); }
};

Result<PreTokenizer> PreTokenizer::create(std::string_view name) {
  const Known* known = nullptr;
  for (const Known& k : known_pretokenizers()) {
    if (k.name == name) known = &k;
  }
  if (known == nullptr) {
    return make_error(
        "unsupported pre-tokenizer '{}' (tokenizer.ggml.pre); known: deepseek-v3, deepseek-llm, "
        "deepseek-coder, gpt2",
        name);
  }
  PreTokenizer p;
  p.name_ = std::string(name);
  for (std::string_view pattern : known->patterns) {
    int err = 0;
    PCRE2_SIZE err_offset = 0;
    // UCP makes \s, \d and the classes Unicode-aware; DOLLAR_ENDONLY gives `$` the meaning it has in the Rust
    // regex engine of the reference tokenizers (end of the piece only, not before a final newline).
    auto stage = std::make_shared<Stage>();
    stage->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &err, &err_offset, nullptr);
    if (stage->code == nullptr) {
      return make_error("pre-tokenizer '{}': pattern does not compile at offset {}: {}", name, err_offset,
                        pcre2_message(err));
    }
    // JIT is several times faster; without JIT support the interpreter gives the same matches.
    (void)pcre2_jit_compile(stage->code, PCRE2_JIT_COMPLETE);
    p.stages_.push_back(std::move(stage));
  }
  return p;
}

Status PreTokenizer::split(std::string_view text, std::vector<std::string_view>& words) const {
  std::vector<std::string_view> pieces{text}, next;
  if (text.empty()) pieces.clear();
  // A private match context and JIT stack per call keep split() safe to run from many threads at once.
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* jit_stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
  if (context != nullptr && jit_stack != nullptr) pcre2_jit_stack_assign(context, nullptr, jit_stack);
  Status status;
  for (const auto& stage : stages_) {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(stage->code, nullptr);
    next.clear();
    for (std::string_view piece : pieces) {
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
      size_t start = 0, emitted = 0;
      while (start < piece.size()) {
        // The text was validated as UTF-8 and pieces begin on character boundaries.
        const int rc =
            pcre2_match(stage->code, subject, piece.size(), start, PCRE2_NO_UTF_CHECK, md, context);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
          status = make_error("pre-tokenizer '{}': matching failed at byte {} of the text: {}", name_,
                              piece.data() + start - text.data(), pcre2_message(rc));
          break;
        }
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        const size_t match_start = ov[0], match_end = ov[1];
        if (match_end == match_start) {
          // An empty match splits nothing; step over one character.
          start = match_start + utf8_char_length(static_cast<uint8_t>(piece[match_start]));
          continue;
        }
        if (match_start > emitted) next.push_back(piece.substr(emitted, match_start - emitted));
        next.push_back(piece.substr(match_start, match_end - match_start));
        emitted = start = match_end;
      }
      if (!status.ok()) break;
      if (emitted < piece.size()) next.push_back(piece.substr(emitted));
    }
    pcre2_match_data_free(md);
    if (!status.ok()) break;
    pieces.swap(next);
  }
  if (jit_stack != nullptr) pcre2_jit_stack_free(jit_stack);
  pcre2_match_context_free(context);
  if (!status.ok()) return status;
  words.insert(words.end(), pieces.begin(), pieces.end());
  return status;
}

}  // namespace onecard::text
