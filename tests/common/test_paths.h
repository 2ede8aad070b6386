// Where tests find the golden data, the checked-in test data, the onecard binary and a private temp folder.
#pragma once

#include <string>

namespace onecard::test {

std::string golden_dir();      // ../shared/golden
std::string test_data_dir();   // tests/data
std::string onecard_binary();  // the built `onecard` command
// A fresh folder for this test process, removed at exit; `name` is joined to it.
std::string temp_path(const std::string& name);

}  // namespace onecard::test
