// The hand-made corpus in tests/data: every malformed file is refused with its own error, naming the file and
// the offset; every valid seed is accepted; and the checked-in files are exactly what the generator makes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "common/test_paths.h"
#include "gguf/file.h"

namespace onecard::gguf {
namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string s{std::istreambuf_iterator<char>(in), {}};
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::vector<fs::path> files_in(const fs::path& dir, const std::string& ext) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ext) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

fs::path data_dir() {
  return fs::path(test::test_data_dir());
}

TEST(MalformedCorpus, EveryFileFailsWithItsSpecificError) {
  const auto files = files_in(data_dir() / "gguf-malformed", ".gguf");
  ASSERT_GE(files.size(), 40u);
  std::set<std::string> messages;
  for (const auto& path : files) {
    SCOPED_TRACE(path.filename().string());
    fs::path expect_path = path;
    expect_path.replace_extension(".expect");
    ASSERT_TRUE(fs::exists(expect_path));
    const std::string expect = read_text(expect_path);
    ASSERT_FALSE(expect.empty());

    auto f = File::open(path.string());
    ASSERT_FALSE(f.ok()) << "accepted";
    const std::string& m = f.error().message();
    EXPECT_EQ(m.rfind(path.string() + ": offset ", 0), 0u) << m;
    EXPECT_NE(m.find(expect), std::string::npos) << "message: " << m << "\nexpected: " << expect;
    // No two cases may be refused for the same reason at the same place: each probes its own check.
    EXPECT_TRUE(messages.insert(m.substr(path.string().size())).second)
        << "same error as another case: " << m;
  }
}

TEST(ValidCorpus, EverySeedIsAccepted) {
  const auto files = files_in(data_dir() / "gguf-valid", ".gguf");
  ASSERT_GE(files.size(), 4u);
  for (const auto& path : files) {
    auto f = File::open(path.string());
    EXPECT_TRUE(f.ok()) << f.error().message();
  }
}

std::vector<uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

TEST(Corpus, CheckedInFilesMatchTheGenerator) {
  const fs::path out = test::temp_path("corpus");
  const std::string cmd = std::string(ONECARD_CORPUS_TOOL) + " '" + out.string() + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  for (const char* sub : {"gguf-malformed", "gguf-valid"}) {
    SCOPED_TRACE(sub);
    std::set<std::string> generated, checked_in;
    for (const auto& e : fs::directory_iterator(out / sub)) generated.insert(e.path().filename().string());
    for (const auto& e : fs::directory_iterator(data_dir() / sub))
      checked_in.insert(e.path().filename().string());
    EXPECT_EQ(generated, checked_in) << "run `ninja update_gguf_corpus` and check in tests/data";
    for (const auto& name : generated) {
      if (!checked_in.count(name)) continue;
      EXPECT_TRUE(read_bytes(out / sub / name) == read_bytes(data_dir() / sub / name)) << name << " differs";
    }
  }
}

}  // namespace
}  // namespace onecard::gguf
