#include "golden_tokenizer.h"

#include <gtest/gtest.h>

#include "common/test_paths.h"
#include "gguf/file.h"

namespace onecard::text::testing {

std::unique_ptr<Tokenizer> load_golden_tokenizer(const std::string& relative_path) {
  auto file = gguf::File::open(test::golden_dir() + "/" + relative_path);
  EXPECT_TRUE(file.ok()) << file.error().message();
  if (!file.ok()) return nullptr;
  auto tok = Tokenizer::from_gguf(*file);
  EXPECT_TRUE(tok.ok()) << tok.error().message();
  return tok.ok() ? std::move(tok).value() : nullptr;
}

}  // namespace onecard::text::testing
