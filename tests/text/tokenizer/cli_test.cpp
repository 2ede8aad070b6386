// `onecard tokenize` as a user runs it: on a vocabulary-only GGUF, on a synthetic model from `onecard gen`,
// and with bad input.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "common/run_command.h"
#include "common/test_paths.h"

namespace onecard {
namespace {

std::string llm_vocab() {
  return test::golden_dir() + "/tokenizer/ggml-vocab-deepseek-llm.gguf";
}

TEST(TokenizeCli, PrintsTheIds) {
  auto r = test::run_onecard("tokenize -m '" + llm_vocab() + "' --text 'Hello world'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "100000 17464 1843\n");
  r = test::run_onecard("tokenize -m '" + llm_vocab() + "' --text 'Hello world' --no-bos");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "17464 1843\n");
}

TEST(TokenizeCli, ShowsPieces) {
  auto r = test::run_onecard("tokenize -m '" + llm_vocab() + "' --text 'Hello world' --show-pieces");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "100000\t'<｜begin▁of▁sentence｜>'\n17464\t'Hello'\n1843\t' world'\n");
}

TEST(TokenizeCli, ControlTokensOnlyWithSpecial) {
  const std::string args = "tokenize -m '" + llm_vocab() + "' --no-bos --text '<｜end▁of▁sentence｜>'";
  auto r = test::run_onecard(args + " --special");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "100001\n");
  r = test::run_onecard(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("100001"), std::string::npos) << r.out;
}

TEST(TokenizeCli, ReadsFilesAndRejectsInvalidUtf8) {
  const std::string good = test::temp_path("tokenize-good.txt");
  std::ofstream(good, std::ios::binary) << "Hello world";
  auto r = test::run_onecard("tokenize -m '" + llm_vocab() + "' --no-bos --file '" + good + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "17464 1843\n");

  const std::string bad = test::temp_path("tokenize-bad.txt");
  std::ofstream(bad, std::ios::binary) << "ab\xFF"
                                          "cd";
  r = test::run_onecard("tokenize -m '" + llm_vocab() + "' --file '" + bad + "'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(r.out.empty());
  EXPECT_NE(r.err.find("invalid UTF-8 at byte offset 2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(bad), std::string::npos) << r.err;
}

TEST(TokenizeCli, UsageErrors) {
  auto r = test::run_onecard("tokenize -m '" + llm_vocab() + "'");
  EXPECT_NE(r.exit_code, 0);
  r = test::run_onecard("tokenize -m '" + llm_vocab() + "' --text a --file b");
  EXPECT_NE(r.exit_code, 0);
  r = test::run_onecard("tokenize -m /no/such/model.gguf --text a");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/no/such/model.gguf"), std::string::npos) << r.err;
}

TEST(TokenizeCli, WorksOnGeneratedModels) {
  const std::string model = test::temp_path("tokenize-tiny.gguf");
  auto r = test::run_onecard("gen --preset tiny -q -o '" + model + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = test::run_onecard("tokenize -m '" + model +
                        "' --text 'The model says: hello, world 123!' --show-pieces");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("'<｜begin▁of▁sentence｜>'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("'!'"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace onecard
