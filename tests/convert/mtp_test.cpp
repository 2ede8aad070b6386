// A checkpoint with a multi-token-prediction layer appended (as DeepSeek-V3's layer 61): skipped by default,
// kept with --keep-mtp (block_count and nextn_predict_layers say so, and the model still skips it), and
// either way the logits of the main layers stay the reference's.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/golden_logits.h"
#include "common/test_paths.h"
#include "convert/convert.h"
#include "convert/safetensors.h"
#include "converted.h"
#include "gguf/file.h"
#include "model/deepseek2.h"

namespace onecard::convert {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct NewTensor {
  std::string name;
  std::vector<uint64_t> shape;
  std::vector<uint8_t> bytes;  // BF16 or a copied tensor's bytes
  std::string dtype = "BF16";
};

void write_safetensors(const fs::path& path, const std::vector<NewTensor>& tensors) {
  json h = json::object();
  uint64_t at = 0;
  for (const NewTensor& t : tensors) {
    h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {at, at + t.bytes.size()}}};
    at += t.bytes.size();
  }
  const std::string text = h.dump();
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>(n >> (8 * i)));
  out << text;
  for (const NewTensor& t : tensors)
    out.write(reinterpret_cast<const char*>(t.bytes.data()), static_cast<std::streamsize>(t.bytes.size()));
}

// tiny-v3-bf16 plus layer 3, an MTP layer: layer 2's weights again, and the MTP projections as small values.
std::string checkpoint_with_mtp() {
  const fs::path dir = test::temp_path("with-mtp");
  fs::create_directories(dir);
  const std::string src = test_support::hf_dir("tiny-v3-bf16");
  for (const auto& e : fs::directory_iterator(src)) {
    fs::copy_file(e.path(), dir / e.path().filename(), fs::copy_options::overwrite_existing);
    fs::permissions(dir / e.path().filename(), fs::perms::owner_read | fs::perms::owner_write);
  }
  json config = json::parse(std::ifstream(dir / "config.json"));
  config["num_nextn_predict_layers"] = 1;
  std::ofstream(dir / "config.json") << config.dump(1);
  json index = json::parse(std::ifstream(dir / "model.safetensors.index.json"));

  std::vector<NewTensor> added;
  for (const char* shard : {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}) {
    auto f = SafetensorsFile::open((dir / shard).string());
    EXPECT_TRUE(f.ok()) << f.error().message();
    for (const StTensor& t : f->tensors()) {
      constexpr std::string_view kLayer2 = "model.layers.2.";
      if (t.name.rfind(kLayer2, 0) != 0) continue;
      NewTensor n{"model.layers.3." + t.name.substr(kLayer2.size()),
                  t.shape,
                  {t.data, t.data + t.n_bytes()},
                  std::string(dtype_name(t.dtype))};
      added.push_back(std::move(n));
    }
  }
  const auto bf16 = [](std::string name, std::vector<uint64_t> shape) {
    uint64_t n = 1;
    for (uint64_t d : shape) n *= d;
    std::vector<uint8_t> b(n * 2);
    for (uint64_t i = 0; i < n; ++i) b[2 * i + 1] = 0x3c;  // bf16 0x3c00 = 1/128
    return NewTensor{std::move(name), std::move(shape), std::move(b)};
  };
  added.push_back(bf16("model.layers.3.eh_proj.weight", {256, 512}));
  added.push_back(bf16("model.layers.3.embed_tokens.weight", {512, 256}));
  added.push_back(bf16("model.layers.3.enorm.weight", {256}));
  added.push_back(bf16("model.layers.3.hnorm.weight", {256}));
  added.push_back(bf16("model.layers.3.shared_head.norm.weight", {256}));
  added.push_back(bf16("model.layers.3.shared_head.head.weight", {512, 256}));
  const char* shard3 = "model-mtp.safetensors";
  write_safetensors(dir / shard3, added);
  for (const NewTensor& t : added) index["weight_map"][t.name] = shard3;
  std::ofstream(dir / "model.safetensors.index.json") << index.dump(1);
  return dir.string();
}

using test::read_all;

double max_rel(const std::string& gguf, const std::string& golden) {
  const auto tokens = read_all<int32_t>(golden + "/reference.tokens.i32");
  const auto want = read_all<float>(golden + "/reference.logits.f32");
  model::LoadOptions o;
  o.n_ctx = static_cast<int>(tokens.size());
  o.n_batch = o.n_ctx;
  o.n_threads = 2;
  auto m = model::DeepSeek2::load(gguf, o);
  EXPECT_TRUE(m.ok()) << m.error().message();
  if (!m.ok()) return 1e9;
  const model::KvCache cache(m.value()->hparams(), 1, o.n_ctx, model::KvType::kF32);
  std::vector<model::BatchToken> batch;
  for (size_t i = 0; i < tokens.size(); ++i) batch.push_back({tokens[i], static_cast<int32_t>(i), 0, true});
  std::vector<float> got;
  EXPECT_TRUE(m.value()->forward(batch, cache, got).ok());
  if (got.size() != want.size()) return 1e9;
  return test::compare_logits(got, want, want.size() / tokens.size()).max_rel;
}

TEST(Mtp, SkippedByDefaultKeptOnRequest) {
  const std::string dir = checkpoint_with_mtp();
  const std::string golden = test_support::hf_dir("tiny-v3-bf16");
  ConvertOptions o;
  o.scheme = model::WeightScheme::kF32;
  o.progress = false;
  o.n_threads = 2;

  const std::string skipped = test::temp_path("mtp-skipped.gguf");
  auto r = convert_checkpoint(dir, skipped, o);
  ASSERT_TRUE(r.ok()) << r.error().message();
  auto f = gguf::File::open(skipped);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->get<uint32_t>("deepseek2.block_count").value(), 3u);
  EXPECT_FALSE(f->has("deepseek2.nextn_predict_layers"));
  EXPECT_EQ(f->tensor("blk.3.attn_norm.weight"), nullptr);
  EXPECT_LE(max_rel(skipped, golden), 1e-4);

  o.mapping.keep_mtp = true;
  const std::string kept = test::temp_path("mtp-kept.gguf");
  r = convert_checkpoint(dir, kept, o);
  ASSERT_TRUE(r.ok()) << r.error().message();
  f = gguf::File::open(kept);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->get<uint32_t>("deepseek2.block_count").value(), 4u);
  EXPECT_EQ(f->get<uint32_t>("deepseek2.nextn_predict_layers").value(), 1u);
  ASSERT_NE(f->tensor("blk.3.nextn.eh_proj.weight"), nullptr);
  EXPECT_EQ(f->tensor("blk.3.nextn.eh_proj.weight")->shape_string(), "[512, 256]");
  EXPECT_NE(f->tensor("blk.3.ffn_gate_exps.weight"), nullptr);
  EXPECT_LE(max_rel(kept, golden), 1e-4);
}

}  // namespace
}  // namespace onecard::convert
