// Damaged copies of a golden checkpoint: each is refused with a message naming the file and the tensor, and
// neither the output nor its temporary .part file is left behind.
#include <filesystem>
#include <fstream>
#include <iterator>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/test_paths.h"
#include "convert/convert.h"
#include "converted.h"

namespace onecard::convert {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::HasSubstr;

constexpr const char* kShard1 = "model-00001-of-00002.safetensors";
constexpr const char* kShard2 = "model-00002-of-00002.safetensors";

// A writable copy of a golden checkpoint.
std::string copy_of(const std::string& name, const std::string& as) {
  const fs::path dst = test::temp_path(as);
  fs::create_directories(dst);
  for (const auto& e : fs::directory_iterator(test_support::hf_dir(name))) {
    fs::copy_file(e.path(), dst / e.path().filename(), fs::copy_options::overwrite_existing);
    fs::permissions(dst / e.path().filename(), fs::perms::owner_read | fs::perms::owner_write);
  }
  return dst.string();
}

std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}
void write_bytes(const fs::path& p, const std::vector<uint8_t>& b) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

// Rewrites a shard's JSON header with `edit`, keeping its data.
template <class F>
void edit_header(const fs::path& shard, F edit) {
  const std::vector<uint8_t> b = read_bytes(shard);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | b[static_cast<size_t>(i)];
  json h = json::parse(b.begin() + 8, b.begin() + 8 + static_cast<std::ptrdiff_t>(n));
  edit(h);
  const std::string text = h.dump();
  std::vector<uint8_t> out(8);
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<uint8_t>(text.size() >> (8 * i));
  out.insert(out.end(), text.begin(), text.end());
  out.insert(out.end(), b.begin() + 8 + static_cast<std::ptrdiff_t>(n), b.end());
  write_bytes(shard, out);
}

// Converts `dir` and expects a failure whose message holds every one of `parts`, with no file left.
void expect_refused(const std::string& dir, const std::vector<std::string>& parts) {
  const std::string out = dir + ".gguf";
  ConvertOptions o;
  o.progress = false;
  o.n_threads = 2;
  auto r = convert_checkpoint(dir, out, o);
  ASSERT_FALSE(r.ok());
  for (const std::string& p : parts) EXPECT_THAT(r.error().message(), HasSubstr(p));
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".part"));
}

TEST(BrokenCheckpoint, MissingShard) {
  const std::string dir = copy_of("tiny-v3-bf16", "missing-shard");
  fs::remove(fs::path(dir) / kShard2);
  expect_refused(dir, {std::string(kShard2) + ": shard missing", "tensor 'model.layers.1."});
}

TEST(BrokenCheckpoint, UnknownDtype) {
  const std::string dir = copy_of("tiny-v3-bf16", "unknown-dtype");
  edit_header(fs::path(dir) / kShard1, [](json& h) { h["model.embed_tokens.weight"]["dtype"] = "F4_E2M1"; });
  expect_refused(dir, {kShard1, "tensor 'model.embed_tokens.weight'", "unknown dtype 'F4_E2M1'"});
}

TEST(BrokenCheckpoint, TruncatedTensor) {
  const std::string dir = copy_of("tiny-v3-fp8", "truncated");
  const fs::path shard = fs::path(dir) / kShard2;
  fs::resize_file(shard, fs::file_size(shard) - 100);
  // The tensor at the end of shard 2 is the one cut.
  expect_refused(dir, {kShard2, "tensor 'model.norm.weight'", "run past"});
}

TEST(BrokenCheckpoint, ShapeContradictingConfig) {
  const std::string dir = copy_of("tiny-v3-fp8", "bad-shape");
  json c = json::parse(std::ifstream(fs::path(dir) / "config.json"));
  c["intermediate_size"] = 384;
  std::ofstream(fs::path(dir) / "config.json") << c.dump(1);
  expect_refused(dir, {kShard1, "tensor 'model.layers.0.mlp.", "contradicts config.json", "[384, 256]"});
}

TEST(BrokenCheckpoint, TensorListedInTheIndexButNotInItsShard) {
  const std::string dir = copy_of("tiny-v3-bf16", "not-in-shard");
  edit_header(fs::path(dir) / kShard1, [](json& h) { h.erase("lm_head.weight"); });
  expect_refused(dir, {kShard1, "tensor 'lm_head.weight' is listed in the index but missing in the shard"});
}

TEST(BrokenCheckpoint, MissingFp8Scales) {
  const std::string dir = copy_of("tiny-v3-fp8", "no-scales");
  json idx = json::parse(std::ifstream(fs::path(dir) / "model.safetensors.index.json"));
  idx["weight_map"].erase("model.layers.0.mlp.up_proj.weight_scale_inv");
  std::ofstream(fs::path(dir) / "model.safetensors.index.json") << idx.dump(1);
  expect_refused(dir, {kShard1, "'model.layers.0.mlp.up_proj.weight' is F8_E4M3 but its block scales"});
}

TEST(BrokenCheckpoint, AnExistingOutputIsNotTouchedOnFailure) {
  const std::string dir = copy_of("tiny-v3-bf16", "keeps-output");
  fs::remove(fs::path(dir) / kShard2);
  const std::string out = dir + ".gguf";
  write_bytes(out, {1, 2, 3});
  ConvertOptions o;
  o.progress = false;
  ASSERT_FALSE(convert_checkpoint(dir, out, o).ok());
  EXPECT_EQ(read_bytes(out), (std::vector<uint8_t>{1, 2, 3}));
}

}  // namespace
}  // namespace onecard::convert
