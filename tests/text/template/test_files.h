// File helpers shared by the chat template tests.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

namespace onecard::text::test {

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace onecard::text::test
