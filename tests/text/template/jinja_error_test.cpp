// Templates the engine cannot render fail with a message naming the construct and its line and column;
// hostile templates (deep nesting, runaway recursion, self-containing values) fail cleanly.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "text/jinja/template.h"

namespace onecard::text::jinja {
namespace {

using ::testing::HasSubstr;

std::string parse_error(const std::string& source) {
  auto t = Template::parse(source);
  EXPECT_FALSE(t.ok()) << "parsed: " << source;
  return t.ok() ? "" : t.error().message();
}

std::string render_error(const std::string& source,
                         const nlohmann::ordered_json& context = nlohmann::ordered_json::object()) {
  auto t = Template::parse(source);
  EXPECT_TRUE(t.ok()) << t.error().message();
  if (!t.ok()) return "";
  auto r = t->render(context);
  EXPECT_FALSE(r.ok()) << "rendered: " << *r;
  return r.ok() ? "" : r.error().message();
}

std::string render(const std::string& source,
                   const nlohmann::ordered_json& context = nlohmann::ordered_json::object()) {
  auto t = Template::parse(source);
  EXPECT_TRUE(t.ok()) << t.error().message();
  if (!t.ok()) return "";
  auto r = t->render(context);
  EXPECT_TRUE(r.ok()) << r.error().message();
  return r.ok() ? *r : "";
}

TEST(JinjaErrors, UnknownFilterNamesItWithLineAndColumn) {
  EXPECT_EQ(parse_error("line one\n{{ x | frobnicate }}"), "line 2, column 8: unknown filter 'frobnicate'");
}

TEST(JinjaErrors, UnknownFilterInsideIfFailsOnlyWhenReached) {
  auto t = Template::parse("{% if x %}{{ x | frobnicate }}{% endif %}");
  ASSERT_TRUE(t.ok()) << t.error().message();
  EXPECT_EQ(*t->render(nlohmann::ordered_json{{"x", false}}), "");
  auto r = t->render(nlohmann::ordered_json{{"x", true}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "line 1, column 18: unknown filter 'frobnicate'");
}

TEST(JinjaErrors, UnknownTest) {
  EXPECT_EQ(parse_error("{{ x is frobnicated }}"), "line 1, column 9: unknown test 'frobnicated'");
}

TEST(JinjaErrors, UnclosedBlockNamesTheBlockAndWhereItOpened) {
  EXPECT_EQ(parse_error("a\n  {% for m in messages %}\n{{ m }}"),
            "line 2, column 3: unclosed '{% for %}' block: the template ends before its '{% endfor %}'");
  EXPECT_THAT(parse_error("{% if a %}{% else %}x"), HasSubstr("unclosed '{% if %}' block"));
  EXPECT_THAT(parse_error("{% macro m() %}x"), HasSubstr("unclosed '{% macro %}' block"));
}

TEST(JinjaErrors, UnsupportedConstructsAreNamed) {
  EXPECT_EQ(parse_error("ok\n{% include 'x.jinja' %}"),
            "line 2, column 4: unsupported construct '{% include %}'");
  EXPECT_THAT(parse_error("{% extends 'base' %}"), HasSubstr("unsupported construct '{% extends %}'"));
  EXPECT_THAT(parse_error("{% call m() %}{% endcall %}"), HasSubstr("unsupported construct '{% call %}'"));
  EXPECT_THAT(parse_error("{% for x in y recursive %}{% endfor %}"),
              HasSubstr("unsupported construct 'recursive'"));
  EXPECT_THAT(parse_error("{{ f(*args) }}"), HasSubstr("unsupported construct '*args'"));
  EXPECT_EQ(parse_error("{% frobnicate %}"), "line 1, column 4: unknown tag 'frobnicate'");
}

TEST(JinjaErrors, SyntaxErrorsSayWhatWasExpected) {
  EXPECT_EQ(parse_error("{{ 1 + }}"), "line 1, column 8: expected an expression, found '}}'");
  EXPECT_EQ(parse_error("{{ x"),
            "line 1, column 1: unexpected end of template: '{{' is never closed by '}}'");
  EXPECT_THAT(parse_error("{# no end"), HasSubstr("missing end of comment tag"));
  EXPECT_THAT(parse_error("{{ 'abc }}"), HasSubstr("unterminated string literal"));
  EXPECT_THAT(parse_error("{{ (1 }}"), HasSubstr("expected ')'"));
  EXPECT_THAT(parse_error("{{ x ] }}"), HasSubstr("unexpected ']'"));
  EXPECT_THAT(parse_error("{% endif %}"), HasSubstr("'{% endif %}' with no open block"));
  EXPECT_THAT(parse_error("{% break %}"), HasSubstr("outside a for loop"));
  EXPECT_THAT(parse_error("{{ a ? b }}"), HasSubstr("unexpected character '?'"));
}

TEST(JinjaErrors, ColumnsCountCharactersNotBytes) {
  EXPECT_EQ(parse_error("｜｜{{ x | nope }}"), "line 1, column 10: unknown filter 'nope'");
}

TEST(JinjaErrors, RaiseExceptionCarriesTheMessage) {
  EXPECT_EQ(render_error("x\n  {{ raise_exception('Roles must alternate') }}"),
            "line 2, column 6: Roles must alternate");
}

TEST(JinjaErrors, UndefinedAndTypeErrorsAsJinja2) {
  EXPECT_EQ(render_error("{{ a.b }}"), "line 1, column 4: 'a' is undefined");
  EXPECT_EQ(render_error("{{ d.x.y }}", {{"d", nlohmann::ordered_json::object()}}),
            "line 1, column 4: 'dict object' has no attribute 'x'");
  EXPECT_EQ(render_error("{{ 'a' + 1 }}"), "line 1, column 4: can only concatenate str (not \"int\") to str");
  EXPECT_EQ(render_error("{{ l.append(1) }}", {{"l", {1}}}),
            "line 1, column 4: access to attribute 'append' of 'list' object is unsafe.");
  EXPECT_EQ(render_error("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}"),
            "line 1, column 34: macro 'm' takes not more than 1 argument(s)");
  EXPECT_THAT(render_error("{% set d.x = 1 %}", {{"d", nlohmann::ordered_json::object()}}),
              HasSubstr("not a namespace()"));
  EXPECT_THAT(render_error("{{ 1 // 0 }}"), HasSubstr("by zero"));
}

TEST(JinjaErrors, ErrorsInsideMacrosPointAtTheMacroBody) {
  EXPECT_EQ(render_error("{% macro m() %}\n{{ nope.x }}{% endmacro %}\n{{ m() }}"),
            "line 2, column 4: 'nope' is undefined");
}

TEST(JinjaLimits, DeepExpressionNestingIsRefusedAtParse) {
  std::string src = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  EXPECT_THAT(parse_error(src), HasSubstr("nesting deeper than"));
  std::string blocks;
  for (int i = 0; i < 5000; ++i) blocks += "{% if true %}";
  EXPECT_THAT(parse_error(blocks), HasSubstr("nesting deeper than"));
  EXPECT_THAT(parse_error("{{ " + std::string(100000, '-') + "1 }}"), HasSubstr("nesting deeper than"));
  EXPECT_THAT(parse_error("{{ " + std::string(100000, '[') + std::string(100000, ']') + " }}"),
              HasSubstr("nesting deeper than"));
}

TEST(JinjaLimits, RunawayMacroRecursionFailsCleanly) {
  EXPECT_THAT(render_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"),
              HasSubstr("deeper than"));
}

TEST(JinjaLimits, SelfContainingNamespaceFailsToPrintInsteadOfOverflowing) {
  EXPECT_THAT(render_error("{% set ns = namespace(x=1) %}{% set ns.x = ns %}{{ ns }}"),
              HasSubstr("nests deeper"));
  EXPECT_THAT(render_error("{% set ns = namespace(x=[]) %}{% for i in range(1000) %}{% set ns.x = [ns.x] %}"
                           "{% endfor %}{{ ns.x | tojson }}"),
              HasSubstr("nests deeper"));
}

TEST(JinjaLimits, IntegerOverflowIsAnErrorNotAWrap) {
  EXPECT_THAT(render_error("{{ 9223372036854775807 + 1 }}"), HasSubstr("integer overflow in '+'"));
  EXPECT_THAT(render_error("{{ 3037000500 * 3037000500 }}"), HasSubstr("integer overflow in '*'"));
  EXPECT_THAT(render_error("{{ 2 ** 64 }}"), HasSubstr("integer overflow in '**'"));
  EXPECT_THAT(render_error("{{ -(-9223372036854775807 - 1) }}"), HasSubstr("integer overflow"));
  EXPECT_THAT(parse_error("{{ 9999999999999999999 }}"), HasSubstr("out of range"));
}

TEST(JinjaLimits, HugeAllocationsAreRefused) {
  EXPECT_THAT(render_error("{{ 'ab' * 1000000000 }}"), HasSubstr("limit"));
  EXPECT_THAT(render_error("{{ range(100000000) | length }}"), HasSubstr("limited"));
  EXPECT_THAT(render_error("{{ 'x' | center(1000000000) }}"), HasSubstr("limit"));
  EXPECT_EQ(render("{{ range(9223372036854775806, 9223372036854775807, 5) | list }}"),
            "[9223372036854775806]");
  EXPECT_EQ(render("{{ 1e300 | int }} {{ '1e300' | int(-1) }}"), "0 -1");
}

TEST(JinjaSource, WindowsNewlinesAreNormalized) {
  EXPECT_EQ(render("a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc\r\n"), "a\nb\nc");
}

TEST(JinjaSource, OnlyOneTrailingNewlineIsDropped) {
  EXPECT_EQ(render("x\n\n"), "x\n");
  EXPECT_EQ(render(""), "");
}

TEST(JinjaContext, JsonInputKeepsKeyOrderForTojson) {
  EXPECT_EQ(render("{{ o | tojson }}", {{"o", {{"z", 1}, {"a", 2}}}}), "{\"z\": 1, \"a\": 2}");
}

TEST(JinjaContext, LargeUnsignedAndFloatNumbers) {
  EXPECT_EQ(render("{{ a }} {{ b }} {{ c }}", {{"a", 18446744073709551615ull}, {"b", 1e300}, {"c", -0.5}}),
            "1.8446744073709552e+19 1e+300 -0.5");
}

}  // namespace
}  // namespace onecard::text::jinja
