// ToolCallParser: DeepSeek's tool-call markup (V3/R1, R1-0528, V3.1) in streamed answers, and telling the
// format from a chat template.
#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <initializer_list>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "common/test_paths.h"
#include "test_files.h"
#include "text/tool_calls.h"

namespace onecard::text {

// For gtest's messages (found by argument-dependent lookup, so outside the anonymous namespace).
void PrintTo(const ToolCall& c, std::ostream* os) {
  *os << "{" << c.id << ", " << c.name << ", " << c.arguments << "}";
}

namespace {

// The markers, spelled out once (U+FF5C bars, U+2581 blocks).
const std::string kBegin = "<｜tool▁calls▁begin｜>";
const std::string kEnd = "<｜tool▁calls▁end｜>";
const std::string kCall = "<｜tool▁call▁begin｜>";
const std::string kCallEnd = "<｜tool▁call▁end｜>";
const std::string kSep = "<｜tool▁sep｜>";

// One V3/R1 call: function<｜tool▁sep｜>NAME\n```json\nARGS\n```.
std::string v3_call(const std::string& name, const std::string& args) {
  return kCall + "function" + kSep + name + "\n```json\n" + args + "\n```" + kCallEnd;
}
std::string v31_call(const std::string& name, const std::string& args) {
  return kCall + name + kSep + args + kCallEnd;
}

struct Parsed {
  std::string content;
  std::vector<ToolCall> calls;  // parser.calls() after finish()
};

std::string id_of(int n) {
  return "id" + std::to_string(n);
}

// Feeds `pieces`, then finishes. Checks that the deltas rebuild exactly the calls the parser reports: each
// call's first delta names it, later ones only add arguments, indices go up by one.
Parsed run(ToolCallFormat format, const std::vector<std::string>& pieces) {
  ToolCallParser parser(format, id_of);
  Parsed out;
  std::vector<ToolCall> rebuilt;
  auto take = [&](const ToolParseDelta& d) {
    out.content += d.content;
    for (const ToolCallDelta& c : d.calls) {
      if (c.index == static_cast<int>(rebuilt.size())) {
        EXPECT_EQ(c.id, id_of(c.index));
        EXPECT_FALSE(c.name.empty());
        rebuilt.push_back({c.id, c.name, ""});
      } else {
        EXPECT_EQ(c.index + 1, static_cast<int>(rebuilt.size())) << "deltas of an earlier call";
        EXPECT_TRUE(c.id.empty() && c.name.empty()) << "id or name after the first delta";
        if (rebuilt.empty()) continue;
      }
      rebuilt.back().arguments += c.arguments;
    }
  };
  for (const std::string& p : pieces) take(parser.feed(p));
  take(parser.finish());
  out.calls = parser.calls();
  EXPECT_EQ(rebuilt, out.calls) << "the deltas do not add up to the calls";
  return out;
}

std::vector<std::string> bytes_of(const std::string& text) {
  std::vector<std::string> out;
  for (char c : text) out.emplace_back(1, c);
  return out;
}

std::vector<std::string> random_split(const std::string& text, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<size_t> len(1, 9);
  std::vector<std::string> out;
  for (size_t i = 0; i < text.size();) {
    const size_t n = std::min(len(rng), text.size() - i);
    out.push_back(text.substr(i, n));
    i += n;
  }
  return out;
}

// Parses `text` in one piece, byte by byte, in random pieces and cut in two at every position; all must
// agree.
Parsed parse_every_way(ToolCallFormat format, const std::string& text) {
  const Parsed whole = run(format, {text});
  auto same = [&](const Parsed& p, const std::string& how) {
    EXPECT_EQ(p.content, whole.content) << how;
    EXPECT_EQ(p.calls, whole.calls) << how;
  };
  same(run(format, bytes_of(text)), "byte by byte");
  for (uint32_t seed = 1; seed <= 10; ++seed) same(run(format, random_split(text, seed)), "random split");
  for (size_t cut = 1; cut < text.size(); ++cut) {
    same(run(format, {text.substr(0, cut), text.substr(cut)}), "cut at " + std::to_string(cut));
  }
  return whole;
}

std::vector<ToolCall> calls(std::initializer_list<std::pair<std::string, std::string>> name_args) {
  std::vector<ToolCall> out;
  for (const auto& [name, args] : name_args) {
    out.push_back({id_of(static_cast<int>(out.size())), name, args});
  }
  return out;
}

const std::string kNested = R"({"a": {"b": [1, {"c": null}], "d": true}, "e": [[], {}], "f": -1.5e3})";
// Braces, brackets, quotes and fences inside strings are no structure.
const std::string kTricky =
    R"({"code": "if (x) { y(); } ] // ``` not a fence", "quote": "say \"}\" and \\", "tail": "```"})";

// --- V3 / R1 ---

TEST(ToolCallsV3, OneCall) {
  const auto r =
      parse_every_way(ToolCallFormat::kV3, kBegin + v3_call("get_weather", R"({"city": "Paris"})") + kEnd);
  EXPECT_EQ(r.content, "");
  EXPECT_EQ(r.calls, calls({{"get_weather", R"({"city": "Paris"})"}}));
}

TEST(ToolCallsV3, TwoCallsSeparatedByNewline) {
  const std::string text = kBegin + v3_call("get_weather", R"({"city": "Paris"})") + "\n" +
                           v3_call("get_time", R"({"zone":"CET"})") + kEnd;
  const auto r = parse_every_way(ToolCallFormat::kV3, text);
  EXPECT_EQ(r.content, "");
  EXPECT_EQ(r.calls, calls({{"get_weather", R"({"city": "Paris"})"}, {"get_time", R"({"zone":"CET"})"}}));
}

TEST(ToolCallsV3, NestedAndTrickyArgumentsAreKeptAsWritten) {
  const std::string pretty = "{\n  \"a\": [1,\n    2]\n}";
  const std::string text =
      kBegin + v3_call("f", kNested) + "\n" + v3_call("g", kTricky) + "\n" + v3_call("h", pretty) + kEnd;
  const auto r = parse_every_way(ToolCallFormat::kV3, text);
  EXPECT_EQ(r.calls, calls({{"f", kNested}, {"g", kTricky}, {"h", pretty}}));
}

TEST(ToolCallsV3, ContentBeforeTheBlock) {
  const std::string text =
      "Let me look that up.\n\n" + kBegin + v3_call("search", R"({"q": "onecard"})") + kEnd;
  const auto r = parse_every_way(ToolCallFormat::kV3, text);
  EXPECT_EQ(r.content, "Let me look that up.");
  EXPECT_EQ(r.calls, calls({{"search", R"({"q": "onecard"})"}}));
}

TEST(ToolCallsV3, TextAfterTheBlockIsContent) {
  const auto r = parse_every_way(ToolCallFormat::kV3, kBegin + v3_call("f", "{}") + kEnd + "\n\nDone.");
  EXPECT_EQ(r.content, "Done.");
  EXPECT_EQ(r.calls, calls({{"f", "{}"}}));
}

TEST(ToolCallsV3, UnterminatedCallAtFinish) {
  const std::string head =
      kBegin + v3_call("a", "{}") + "\n" + kCall + "function" + kSep + "get_weather\n```json\n";
  auto r = parse_every_way(ToolCallFormat::kV3, head + R"({"city": "Par)");
  EXPECT_EQ(r.calls, calls({{"a", "{}"}, {"get_weather", R"({"city": "Par)"}}));
  // Cut inside the closing fence: the fence stays out.
  r = parse_every_way(ToolCallFormat::kV3, head + "{\"city\": \"Paris\"}\n``");
  EXPECT_EQ(r.calls, calls({{"a", "{}"}, {"get_weather", R"({"city": "Paris"})"}}));
  // Cut before the arguments, and before the name is complete.
  r = parse_every_way(ToolCallFormat::kV3, head);
  EXPECT_EQ(r.calls, calls({{"a", "{}"}, {"get_weather", ""}}));
  r = parse_every_way(ToolCallFormat::kV3, kBegin + kCall + "function" + kSep + "get_wea");
  EXPECT_EQ(r.calls, calls({{"get_wea", ""}}));
  // An opened block or call without a name gives no call.
  r = parse_every_way(ToolCallFormat::kV3, "Sure." + kBegin + kCall);
  EXPECT_EQ(r.content, "Sure.");
  EXPECT_TRUE(r.calls.empty());
}

TEST(ToolCallsV3, MarkerPrefixesThatAreNotMarkersAreContent) {
  for (const char* text :
       {"a <｜tool▁ca and <｜toolbox｜> b", "ends with <｜tool▁calls", "ends with space  ",
        "x <｜tool▁call▁end｜> y", "<｜tool▁sep｜> alone", "```json\n{\"not\": \"a call\"}\n```"}) {
    SCOPED_TRACE(text);
    const auto r = parse_every_way(ToolCallFormat::kV3, text);
    EXPECT_EQ(r.content, text);
    EXPECT_TRUE(r.calls.empty());
  }
}

TEST(ToolCallsV3, ArgumentsStreamBeforeTheCallEnds) {
  ToolCallParser p(ToolCallFormat::kV3, id_of);
  auto d = p.feed("Hi " + kBegin + kCall + "function" + kSep + "f\n```json\n{\"a\": ");
  EXPECT_EQ(d.content, "Hi");
  ASSERT_EQ(d.calls.size(), 1u);
  EXPECT_EQ(d.calls[0].index, 0);
  EXPECT_EQ(d.calls[0].id, "id0");
  EXPECT_EQ(d.calls[0].name, "f");
  EXPECT_EQ(d.calls[0].arguments, "{\"a\":");  // the space may still be whitespace before a fence
  EXPECT_TRUE(p.calls().empty());
  d = p.feed("1}\n`");
  ASSERT_EQ(d.calls.size(), 1u);
  EXPECT_EQ(d.calls[0].name, "");
  EXPECT_EQ(d.calls[0].arguments, " 1}");
  d = p.feed("``" + kCallEnd + kEnd);
  EXPECT_TRUE(d.empty());
  ASSERT_EQ(p.calls().size(), 1u);
  EXPECT_EQ(p.calls()[0].arguments, "{\"a\": 1}");
  EXPECT_TRUE(p.finish().empty());
}

TEST(ToolCallsV3, DefaultIdsAreRandom) {
  ToolCallParser a(ToolCallFormat::kV3), b(ToolCallFormat::kV3);
  const std::string text = kBegin + v3_call("f", "{}") + kEnd;
  a.feed(text);
  b.feed(text);
  ASSERT_EQ(a.calls().size(), 1u);
  ASSERT_EQ(b.calls().size(), 1u);
  const std::string& id = a.calls()[0].id;
  ASSERT_EQ(id.size(), 5u + 24u) << id;
  EXPECT_TRUE(id.starts_with("call_")) << id;
  for (char c : id.substr(5)) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c))) << id;
  EXPECT_NE(id, b.calls()[0].id);
}

// --- R1-0528: what the model may write besides its template's layout ---

TEST(ToolCallsR1_0528, LeftOutTypeAndFenceVariants) {
  const std::string args = R"({"city": "Oslo"})";
  for (const std::string& call : {
           kCall + kSep + "get_weather\n```json\n" + args + "\n```" + kCallEnd,  // no type
           kCall + "get_weather\n```json\n" + args + "\n```" + kCallEnd,         // no type, no separator
           kCall + "function" + kSep + "get_weather\n```\n" + args + "\n```" + kCallEnd,  // untagged fence
           kCall + "function" + kSep + "get_weather\n```JSON\n" + args + "\n```\n" + kCallEnd,
           kCall + "function" + kSep + "get_weather\n" + args + "\n" + kCallEnd,  // no fence
           kCall + "function" + kSep + "get_weather```json\n" + args + "```" + kCallEnd,
           "function" + kSep + "get_weather\n```json\n" + args + "\n```" + kCallEnd,  // no call opener
           "\n" + kCall + "\nfunction" + kSep + "get_weather\n```json\n" + args + "\n```\n" + kCallEnd + "\n",
       }) {
    SCOPED_TRACE(call);
    const auto r = parse_every_way(ToolCallFormat::kR1_0528, "Checking. " + kBegin + call + kEnd);
    EXPECT_EQ(r.content, "Checking.");
    EXPECT_EQ(r.calls, calls({{"get_weather", args}}));
  }
}

TEST(ToolCallsR1_0528, OtherOpenersAndMissingEnds) {
  // The block opener spelled as plain text, the block's end left out: the calls still count.
  const std::string text = "<｜tool▁calls｜>" + v3_call("a", "{\"x\": 1}") + "\n" + v3_call("b", kTricky);
  auto r = parse_every_way(ToolCallFormat::kR1_0528, text);
  EXPECT_EQ(r.calls, calls({{"a", "{\"x\": 1}"}, {"b", kTricky}}));
  // A bare call opener in content opens the block; a call's end left out ends at the next call.
  const std::string bare = "x" + kCall + "function" + kSep + "a\n```json\n{}\n```" + kCall + "function" +
                           kSep + "b\n```json\n[1]\n```" + kCallEnd + kEnd;
  r = parse_every_way(ToolCallFormat::kR1_0528, bare);
  EXPECT_EQ(r.content, "x");
  EXPECT_EQ(r.calls, calls({{"a", "{}"}, {"b", "[1]"}}));
  // Text in the block that is no call ends the block.
  r = parse_every_way(ToolCallFormat::kR1_0528, kBegin + v3_call("a", "{}") + "\nThat is all.\nBye");
  EXPECT_EQ(r.content, "That is all.\nBye");
  EXPECT_EQ(r.calls, calls({{"a", "{}"}}));
}

TEST(ToolCallsR1_0528, ArgumentsThatAreNoJsonObject) {
  // Kept as written, less the fence and surrounding whitespace; what follows a complete value is dropped.
  const std::string text = kBegin + v3_call("a", "city=Paris") + v3_call("b", "{\"x\": 1} trailing words") +
                           v3_call("c", "{\"unclosed\": [1, 2") + kEnd;
  const auto r = parse_every_way(ToolCallFormat::kR1_0528, text);
  EXPECT_EQ(r.calls, calls({{"a", "city=Paris"}, {"b", "{\"x\": 1}"}, {"c", "{\"unclosed\": [1, 2"}}));
}

// --- V3.1 ---

TEST(ToolCallsV31, OneAndTwoCalls) {
  auto r =
      parse_every_way(ToolCallFormat::kV31, kBegin + v31_call("get_weather", R"({"city": "Paris"})") + kEnd);
  EXPECT_EQ(r.calls, calls({{"get_weather", R"({"city": "Paris"})"}}));
  r = parse_every_way(ToolCallFormat::kV31, "Two lookups." + kBegin + v31_call("get_weather", kNested) +
                                                v31_call("get_time", kTricky) + kEnd);
  EXPECT_EQ(r.content, "Two lookups.");
  EXPECT_EQ(r.calls, calls({{"get_weather", kNested}, {"get_time", kTricky}}));
}

TEST(ToolCallsV31, UnterminatedAndSpacedOut) {
  auto r = parse_every_way(ToolCallFormat::kV31,
                           kBegin + v31_call("a", "{}") + kCall + "b" + kSep + "{\"q\": [1, ");
  EXPECT_EQ(r.calls, calls({{"a", "{}"}, {"b", "{\"q\": [1,"}}));
  r = parse_every_way(ToolCallFormat::kV31,
                      kBegin + "\n" + kCall + " a " + kSep + "\n{\"k\": \"v\"}\n" + kCallEnd + "\n" + kEnd);
  EXPECT_EQ(r.calls, calls({{"a", "{\"k\": \"v\"}"}}));
  r = parse_every_way(ToolCallFormat::kV31, kBegin + kCall + "noargs" + kCallEnd + kEnd);
  EXPECT_EQ(r.calls, calls({{"noargs", ""}}));
}

TEST(ToolCallsV31, MarkerPrefixesThatAreNotMarkersAreContent) {
  const std::string text = "a <｜tool▁call <｜tool▁calls▁beginning｜> <｜tool▁";
  const auto r = parse_every_way(ToolCallFormat::kV31, text);
  EXPECT_EQ(r.content, text);
  EXPECT_TRUE(r.calls.empty());
}

// --- no format ---

TEST(ToolCallsNone, EverythingIsContentAtOnce) {
  ToolCallParser p(ToolCallFormat::kNone);
  const std::string text = "a " + kBegin + v3_call("f", "{}") + kEnd;
  EXPECT_EQ(p.feed(text.substr(0, 5)).content, text.substr(0, 5));
  EXPECT_EQ(p.feed(text.substr(5)).content, text.substr(5));
  EXPECT_TRUE(p.finish().empty());
  EXPECT_TRUE(p.calls().empty());
}

// --- formats of templates ---

TEST(ToolCallFormat, Names) {
  EXPECT_EQ(tool_call_format_name(ToolCallFormat::kNone), "none");
  EXPECT_EQ(tool_call_format_name(ToolCallFormat::kV3), "deepseek-v3");
  EXPECT_EQ(tool_call_format_name(ToolCallFormat::kR1_0528), "deepseek-r1-0528");
  EXPECT_EQ(tool_call_format_name(ToolCallFormat::kV31), "deepseek-v3.1");
}

TEST(ToolCallFormat, DetectedFromGoldenTemplates) {
  const std::string dir = onecard::test::golden_dir() + "/templates/";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << dir << " is missing";
  const std::vector<std::pair<std::string, ToolCallFormat>> expected = {
      {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", ToolCallFormat::kV3},
      {"llama-cpp-deepseek-r1.jinja", ToolCallFormat::kV3},
      {"deepseek-ai-DeepSeek-V3.1.jinja", ToolCallFormat::kV31},
      {"deepseek-ai-DeepSeek-V3.2.jinja", ToolCallFormat::kNone},  // DSML markup: not parsed
  };
  for (const auto& [name, format] : expected) {
    const std::string source = test::read_file(dir + name);
    ASSERT_FALSE(source.empty()) << dir + name;
    EXPECT_EQ(detect_tool_call_format(source), format) << name;
  }
}

TEST(ToolCallFormat, DetectedFromOtherTemplates) {
  // Without tool markers (the golden tiny models' template).
  EXPECT_EQ(
      detect_tool_call_format("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}"
                              "{{ '<｜User｜>' + m['content'] }}{% elif m['role'] == 'assistant' %}"
                              "{{ '<｜Assistant｜>' + m['content'] + eos_token }}{% endif %}{% endfor %}"
                              "{% if add_generation_prompt %}{{ '<｜Assistant｜>' }}{% endif %}"),
      ToolCallFormat::kNone);
  // V3 and V3-0324 write fenced calls and know no thinking.
  const std::string fenced =
      "{{'<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + "
      "tool['function']['name'] + '\\n' + '```json' + '\\n' + tool['function']['arguments'] + "
      "'\\n' + '```' + '<｜tool▁call▁end｜>'}}";
  EXPECT_EQ(detect_tool_call_format(fenced), ToolCallFormat::kV3);
  // R1 opens a think block in the generation prompt; R1-0528 only strips </think> from earlier answers.
  EXPECT_EQ(detect_tool_call_format(fenced + "{{'<｜Assistant｜><think>\\n'}}"), ToolCallFormat::kV3);
  EXPECT_EQ(
      detect_tool_call_format("{% if '</think>' in content %}{% set content = content.split('</think>')[-1] "
                              "%}{% endif %}" +
                              fenced),
      ToolCallFormat::kR1_0528);
}

}  // namespace
}  // namespace onecard::text
