// `onecard imatrix` as a user runs it: a file that read_imatrix takes back with the run's datasets and chunk
// figures, and errors that leave no file behind.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "common/run_command.h"
#include "common/test_paths.h"
#include "model/imatrix_file.h"

namespace onecard {
namespace {

const std::string kModel = test::golden_dir() + "/models/tiny-v3-f32.gguf";

std::string write_text(const std::string& name, int repeats) {
  const std::string path = test::temp_path(name);
  std::ofstream out(path);
  for (int i = 0; i < repeats; ++i) out << "The quick brown fox jumps over the lazy dog, " << i << " times. ";
  return path;
}

TEST(ImatrixCli, WritesAFileThatReadsBack) {
  const std::string text = write_text("calibration.txt", 40);
  const std::string out = test::temp_path("out.imatrix.gguf");
  const auto r =
      test::run_onecard("imatrix -m " + kModel + " -f " + text + " -o " + out + " -c 32 --chunks 2 -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("[1]"), std::string::npos) << r.out;  // a perplexity per chunk
  EXPECT_NE(r.out.find("[2]"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(out + ".part"));
  auto m = model::read_imatrix(out);
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_EQ(m->datasets, std::vector<std::string>{text});
  EXPECT_EQ(m->chunk_count, 2u);
  EXPECT_EQ(m->chunk_size, 32u);
  const model::ImatrixEntry* output = m->find("output.weight");
  ASSERT_NE(output, nullptr);
  EXPECT_EQ(output->counts, std::vector<float>{64});  // every position of both chunks
  const model::ImatrixEntry* experts = m->find("blk.1.ffn_down_exps.weight");
  ASSERT_NE(experts, nullptr);
  EXPECT_EQ(experts->n_mat, 16);
}

TEST(ImatrixCli, TextShorterThanAChunkIsAnErrorAndWritesNothing) {
  const std::string text = write_text("short.txt", 1);
  const std::string out = test::temp_path("short.imatrix.gguf");
  const auto r = test::run_onecard("imatrix -m " + kModel + " -f " + text + " -o " + out + " -c 64 -t 2");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(text), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("fewer than one chunk"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out));
  EXPECT_FALSE(std::filesystem::exists(out + ".part"));
}

TEST(ImatrixCli, UnreadableInputsAndUnwritableOutputAreNamed) {
  const std::string text = write_text("some.txt", 40);
  const std::string missing = test::temp_path("no-such.txt");
  auto r = test::run_onecard("imatrix -m " + kModel + " -f " + missing + " -o " + test::temp_path("a.gguf") +
                             " -c 32");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(missing), std::string::npos) << r.err;
  const std::string bad_out = test::temp_path("no-such-dir/out.gguf");
  r = test::run_onecard("imatrix -m " + kModel + " -f " + text + " -o " + bad_out + " -c 32");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no-such-dir"), std::string::npos) << r.err;
  const std::string not_model = test::temp_path("not-a-model.gguf");
  r = test::run_onecard("imatrix -m " + text + " -f " + text + " -o " + not_model + " -c 32");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(text), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(not_model));
}

}  // namespace
}  // namespace onecard
