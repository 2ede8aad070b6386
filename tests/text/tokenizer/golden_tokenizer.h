// Loading a tokenizer from a file of the golden data, for the tokenizer tests.
#pragma once

#include <memory>
#include <string>

#include "text/tokenizer.h"

namespace onecard::text::testing {

// The tokenizer of golden_dir()/relative_path, or nullptr with the error reported as a test failure.
std::unique_ptr<Tokenizer> load_golden_tokenizer(const std::string& relative_path);

}  // namespace onecard::text::testing
