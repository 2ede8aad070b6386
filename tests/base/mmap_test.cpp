#include "base/mmap.h"

#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>

#include "common/test_paths.h"

namespace onecard {
namespace {

TEST(MappedFile, MapsContents) {
  const std::string path = test::temp_path("mapped.bin");
  {
    std::ofstream out(path, std::ios::binary);
    out << "hello GGUF";
  }
  auto f = MappedFile::open(path);
  ASSERT_TRUE(f.ok()) << f.error().message();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(f->data()), f->size()), "hello GGUF");
  MappedFile moved = std::move(f).value();
  EXPECT_EQ(moved.size(), 10u);
}

TEST(MappedFile, EmptyFileHasNoBytes) {
  const std::string path = test::temp_path("empty.bin");
  { std::ofstream out(path, std::ios::binary); }
  auto f = MappedFile::open(path);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->size(), 0u);
}

TEST(MappedFile, ErrorsNameThePath) {
  auto missing = MappedFile::open("/nonexistent/model.gguf");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("/nonexistent/model.gguf: cannot open"), std::string::npos);
  auto dir = MappedFile::open("/tmp");
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.error().message().find("not a regular file"), std::string::npos);
}

}  // namespace
}  // namespace onecard
