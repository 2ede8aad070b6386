// Runs the safetensors fuzz target's entry point, built without libFuzzer, on every checked-in seed (and any
// crashing input found by fuzzing and added to tests/data/safetensors/).
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "common/test_paths.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace onecard {
namespace {

namespace fs = std::filesystem;

TEST(SafetensorsFuzzCorpus, EverySeedRunsCleanly) {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(fs::path(test::test_data_dir()) / "safetensors")) {
    if (!e.is_regular_file() || e.path().extension() != ".safetensors") continue;
    SCOPED_TRACE(e.path().string());
    std::ifstream in(e.path(), std::ios::binary);
    // An exactly-sized heap copy, as libFuzzer passes it, so that ASan builds see any read past the end.
    const std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(in), {}};
    EXPECT_EQ(LLVMFuzzerTestOneInput(bytes.data(), bytes.size()), 0);
    ++n;
  }
  EXPECT_GE(n, 8u);
}

}  // namespace
}  // namespace onecard
