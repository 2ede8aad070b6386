// Writes small files into a fresh folder, to stand in for /sys in tests.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

#include "common/test_paths.h"

namespace onecard::test {

class FakeSysfs {
 public:
  explicit FakeSysfs(const std::string& name) : root_(temp_path(name)) {
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
  }
  void write(const std::string& relative, const std::string& text) const {
    const std::filesystem::path path = std::filesystem::path(root_) / relative;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }
  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

}  // namespace onecard::test
