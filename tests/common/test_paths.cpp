#include "common/test_paths.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace onecard::test {
namespace {

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    path_ = std::filesystem::path(base ? base : "/tmp") / ("onecard-test-" + std::to_string(getpid()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace

std::string golden_dir() {
  // The GPU machine gets the golden data carried inside the checkout (scripts/gpu-check.sh).
  const char* dir = std::getenv("ONECARD_GOLDEN_DIR");
  return dir != nullptr && *dir != '\0' ? std::string(dir) : std::string(ONECARD_GOLDEN_DIR);
}
std::string test_data_dir() {
  return ONECARD_TEST_DATA_DIR;
}
std::string onecard_binary() {
  return ONECARD_BINARY;
}

std::string temp_path(const std::string& name) {
  static TempDir dir;
  return (dir.path() / name).string();
}

}  // namespace onecard::test
