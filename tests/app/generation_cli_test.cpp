// `onecard run`, `chat`, `perplexity` and `quantize` as a user runs them, on a synthetic model made by
// `onecard gen`.
#include <fstream>

#include <gtest/gtest.h>

#include "common/run_command.h"
#include "common/test_paths.h"

namespace onecard {
namespace {

const std::string& tiny_model() {
  static const std::string path = [] {
    const std::string p = test::temp_path("cli-tiny.gguf");
    const auto r = test::run_onecard("gen --preset tiny --quiet -o '" + p + "'");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return p;
  }();
  return path;
}

std::string write_file(const std::string& name, const std::string& contents) {
  const std::string path = test::temp_path(name);
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

TEST(RunCommand, SameSeedSameCompletion) {
  const std::string args = "run -m '" + tiny_model() + "' -p 'The capital of' -n 12 --seed 7 -t 2";
  const auto a = test::run_onecard(args);
  const auto b = test::run_onecard(args);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.err.find("generation 12 tokens"), std::string::npos) << a.err;
  EXPECT_NE(a.err.find("finish: length"), std::string::npos) << a.err;
  const auto c = test::run_onecard("run -m '" + tiny_model() + "' -p 'The capital of' -n 12 --seed 8 -t 2");
  EXPECT_NE(a.out, c.out);
}

TEST(RunCommand, ChatTemplateAndStopString) {
  const auto r =
      test::run_onecard("run -m '" + tiny_model() + "' --chat --system 'Be brief.' -p 'Hi' -n 6 --temp 0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto stopped = test::run_onecard("run -m '" + tiny_model() + "' -p 'Hi' -n 40 --seed 2 --stop e");
  ASSERT_EQ(stopped.exit_code, 0) << stopped.err;
  EXPECT_EQ(stopped.out.find('e'), std::string::npos) << stopped.out;
}

TEST(RunCommand, BadInputGetsAClearError) {
  const std::string model = "-m '" + tiny_model() + "'";
  auto r = test::run_onecard("run " + model +
                             " -c 16 -p 'one two three four five six seven eight nine ten eleven "
                             "twelve thirteen fourteen fifteen sixteen seventeen'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("the context holds 16"), std::string::npos) << r.err;

  r = test::run_onecard("run " + model + " -f '" + write_file("bad-utf8.txt", "caf\xc3(") + "'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("invalid UTF-8 at byte offset 3"), std::string::npos) << r.err;

  r = test::run_onecard("run " + model + " -p x --top-p 2");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("top_p 2"), std::string::npos) << r.err;

  r = test::run_onecard("run " + model + " -p x --logit-bias 12x");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("is not ID=BIAS"), std::string::npos) << r.err;

  r = test::run_onecard("run -m /nonexistent.gguf -p x");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/nonexistent.gguf: cannot open"), std::string::npos) << r.err;

  r = test::run_onecard("run " + model);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--prompt or --file"), std::string::npos) << r.err;
}

TEST(ChatCommand, MultiTurnWithReset) {
  const auto r =
      test::run_command("printf 'hello\\n/reset\\nhi there\\nand again\\n' | " + test::onecard_binary() +
                        " chat -m '" + tiny_model() + "' -n 5 --seed 1 -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("(conversation reset)"), std::string::npos) << r.out;
  size_t turns = 0;
  for (size_t at = r.err.find("generation "); at != std::string::npos; at = r.err.find("generation ", at + 1))
    ++turns;
  EXPECT_EQ(turns, 3u) << r.err;
}

// Ctrl-C while an answer is being written stops that answer; the chat goes on and ends normally.
TEST(ChatCommand, InterruptStopsTheAnswerNotTheProgram) {
  const std::string fifo = test::temp_path("chat-input"), out = test::temp_path("chat-output");
  // Interrupt once the answer has begun to appear, then end the chat from its prompt. The script is a file so
  // that no shell quoting stands between it and bash.
  const std::string script =
      write_file("interrupt.sh",
                 "mkfifo '" + fifo + "'\n" + test::onecard_binary() + " chat -m '" + tiny_model() +
                     "' -n -1 --ignore-eos -t 2 < '" + fifo + "' > '" + out + "' &\npid=$!\nexec 3>'" + fifo +
                     "'\necho hello >&3\nfor i in $(seq 3000); do [ $(stat -c %s '" + out +
                     "') -gt 16 ] && break; sleep 0.02; done\nkill -INT $pid\nsleep 0.5\necho /exit >&3\n"
                     "wait $pid\n");
  const auto r = test::run_command("bash '" + script + "'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("finish: cancelled"), std::string::npos) << r.err;
}

TEST(PerplexityCommand, ScoresChunksOfAText) {
  std::string text;
  for (int i = 0; i < 40; ++i) text += "the quick brown fox jumps over the lazy dog and then it rests. ";
  const auto r = test::run_onecard("perplexity -m '" + tiny_model() + "' -f '" + write_file("ppl.txt", text) +
                                   "' -c 64 -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("[1]"), std::string::npos);
  EXPECT_NE(r.out.find("PPL = "), std::string::npos) << r.out;
  const auto short_text = test::run_onecard("perplexity -m '" + tiny_model() + "' -f '" +
                                            write_file("short.txt", "hi") + "' -c 64");
  EXPECT_EQ(short_text.exit_code, 1);
  EXPECT_NE(short_text.err.find("fewer than one chunk of 64"), std::string::npos) << short_text.err;
}

TEST(QuantizeCommand, WritesALoadableCopy) {
  const std::string out = test::temp_path("cli-tiny-q8_0.gguf");
  auto r = test::run_onecard("quantize '" + tiny_model() + "' '" + out + "' --type q8_0 -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = test::run_onecard("inspect '" + out + "'");
  EXPECT_NE(r.out.find("Q8_0"), std::string::npos);
  r = test::run_onecard("run -m '" + out + "' -p hello -n 4 -t 2");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = test::run_onecard("quantize '" + tiny_model() + "' '" + out + "' --type q9");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("'q9' is not one of"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace onecard
