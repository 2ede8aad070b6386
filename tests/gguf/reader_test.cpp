// The reader on the golden GGUF files: real converter output, with and without tensors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "base/mmap.h"
#include "common/test_paths.h"
#include "gguf/file.h"
#include "gguf/writer.h"

namespace onecard::gguf {
namespace {

struct Golden {
  std::string path;  // under the golden folder
  size_t n_kv;
  size_t n_tensors;
};

const Golden kGolden[] = {
    {"models/tiny-v2lite-f16.gguf", 32, 41},
    {"models/tiny-v3-bf16.gguf", 39, 49},
    {"models/tiny-v3-f16-kbvb.gguf", 41, 52},
    {"models/tiny-v3-f32.gguf", 39, 49},
    {"tokenizer/ggml-vocab-deepseek-coder.gguf", 25, 0},
    {"tokenizer/ggml-vocab-deepseek-llm.gguf", 23, 0},
};

class GoldenFile : public testing::TestWithParam<Golden> {};

TEST_P(GoldenFile, OpensWithConsistentLayout) {
  const std::string path = test::golden_dir() + "/" + GetParam().path;
  auto f = File::open(path);
  ASSERT_TRUE(f.ok()) << f.error().message();
  EXPECT_EQ(f->path(), path);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_EQ(f->metadata().size(), GetParam().n_kv);
  EXPECT_EQ(f->tensors().size(), GetParam().n_tensors);
  EXPECT_EQ(f->data_offset() % 32, 0u);
  EXPECT_TRUE(f->has("general.architecture"));
  EXPECT_TRUE(f->get<std::string_view>("tokenizer.ggml.model").ok());

  // The same bytes through parse(), so that data pointers can be compared with the start of the mapping.
  auto map = MappedFile::open(path);
  ASSERT_TRUE(map.ok()) << map.error().message();
  auto g = File::parse(map->bytes(), "golden");
  ASSERT_TRUE(g.ok()) << g.error().message();
  const uint8_t* begin = map->data();
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& t : g->tensors()) {
    SCOPED_TRACE(std::string(t.name));
    EXPECT_EQ(t.data, begin + g->data_offset() + t.offset);
    EXPECT_LE(g->data_offset() + t.offset + t.n_bytes, map->size());
    EXPECT_EQ(static_cast<uint64_t>(t.data - begin) % 32, 0u);
    uint64_t n = 1;
    for (uint64_t d : t.dims()) n *= d;
    EXPECT_EQ(n, t.n_elements);
    EXPECT_EQ(t.n_bytes, row_bytes(t.type, t.ne[0]) * (n / t.ne[0]));
    EXPECT_EQ(g->tensor(t.name), &t);
    ranges.emplace_back(t.offset, t.offset + t.n_bytes);
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) EXPECT_LE(ranges[i - 1].second, ranges[i].first);
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenFile, testing::ValuesIn(kGolden), [](const auto& param_info) {
  std::string name = param_info.param.path.substr(param_info.param.path.find('/') + 1);
  name = name.substr(0, name.find('.'));
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
});

TEST(GoldenReader, TinyV3KnownKeysAndTensors) {
  auto f = File::open(test::golden_dir() + "/models/tiny-v3-bf16.gguf");
  ASSERT_TRUE(f.ok()) << f.error().message();
  EXPECT_EQ(f->get<std::string>("general.architecture").value(), "deepseek2");
  EXPECT_EQ(f->get<uint32_t>("deepseek2.block_count").value(), 3u);
  EXPECT_EQ(f->get<uint64_t>("deepseek2.embedding_length").value(), 256u);
  EXPECT_EQ(f->get<int32_t>("deepseek2.expert_count").value(), 16);
  EXPECT_FLOAT_EQ(f->get<float>("deepseek2.expert_weights_scale").value(), 2.5f);
  EXPECT_TRUE(f->get<bool>("deepseek2.expert_weights_norm").value());
  EXPECT_EQ(f->get<std::string_view>("deepseek2.rope.scaling.type").value(), "yarn");

  const Value* tokens = f->find("tokenizer.ggml.tokens");
  ASSERT_NE(tokens, nullptr);
  EXPECT_EQ(tokens->array_type(), ValueType::STRING);
  EXPECT_EQ(tokens->array_size(), 512u);
  EXPECT_EQ(tokens->strings()[0], "Ā");
  const Value* types = f->find("tokenizer.ggml.token_type");
  ASSERT_NE(types, nullptr);
  EXPECT_EQ(types->to_vector<int32_t>().value().size(), 512u);
  EXPECT_EQ(f->find("tokenizer.ggml.merges")->array_size(), 107u);

  const TensorInfo* embd = f->tensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->type, GgmlType::BF16);
  EXPECT_EQ(embd->shape_string(), "[256, 512]");
  EXPECT_EQ(embd->n_bytes, 256u * 512 * 2);
  const TensorInfo* norm = f->tensor("blk.0.attn_norm.weight");
  ASSERT_NE(norm, nullptr);
  EXPECT_EQ(norm->type, GgmlType::F32);
  EXPECT_EQ(norm->n_dims, 1u);
  EXPECT_EQ(f->tensors().front().name, "token_embd.weight");
  EXPECT_EQ(f->tensor("no.such.tensor"), nullptr);
}

TEST(GoldenReader, OtherModelVariants) {
  auto lite = File::open(test::golden_dir() + "/models/tiny-v2lite-f16.gguf");
  ASSERT_TRUE(lite.ok()) << lite.error().message();
  EXPECT_FALSE(lite->has("deepseek2.attention.q_lora_rank"));
  EXPECT_EQ(lite->tensor("token_embd.weight")->shape_string(), "[160, 384]");
  EXPECT_EQ(lite->tensor("token_embd.weight")->type, GgmlType::F16);
  EXPECT_EQ(lite->find("tokenizer.ggml.tokens")->array_size(), 384u);

  auto kbvb = File::open(test::golden_dir() + "/models/tiny-v3-f16-kbvb.gguf");
  ASSERT_TRUE(kbvb.ok()) << kbvb.error().message();
  EXPECT_EQ(kbvb->get<uint32_t>("deepseek2.attention.key_length").value(), 288u);
  EXPECT_EQ(kbvb->get<uint32_t>("deepseek2.attention.key_length_mla").value(), 96u);
  const TensorInfo* kb = kbvb->tensor("blk.0.attn_k_b.weight");
  ASSERT_NE(kb, nullptr);
  EXPECT_EQ(kb->shape_string(), "[64, 256, 4]");
  EXPECT_EQ(kbvb->tensor("blk.2.attn_v_b.weight")->shape_string(), "[256, 64, 4]");

  auto f32 = File::open(test::golden_dir() + "/models/tiny-v3-f32.gguf");
  ASSERT_TRUE(f32.ok()) << f32.error().message();
  EXPECT_EQ(f32->tensor("token_embd.weight")->type, GgmlType::F32);
  EXPECT_EQ(f32->tensor("token_embd.weight")->n_bytes, 256u * 512 * 4);
}

TEST(GoldenReader, TokenizerOnlyFilesEndAfterTheHeader) {
  auto coder = File::open(test::golden_dir() + "/tokenizer/ggml-vocab-deepseek-coder.gguf");
  ASSERT_TRUE(coder.ok()) << coder.error().message();
  EXPECT_TRUE(coder->tensors().empty());
  EXPECT_EQ(coder->get<std::string>("general.architecture").value(), "llama");
  EXPECT_EQ(coder->find("tokenizer.ggml.tokens")->array_size(), 32256u);
  EXPECT_EQ(coder->get<uint32_t>("tokenizer.ggml.bos_token_id").value(), 32013u);
  EXPECT_EQ(coder->get<std::string>("llama.rope.scaling.type").value(), "linear");
  EXPECT_GE(coder->data_offset(), coder->file_size());

  auto llm = File::open(test::golden_dir() + "/tokenizer/ggml-vocab-deepseek-llm.gguf");
  ASSERT_TRUE(llm.ok()) << llm.error().message();
  EXPECT_EQ(llm->find("tokenizer.ggml.tokens")->array_size(), 102400u);
  EXPECT_EQ(llm->find("tokenizer.ggml.merges")->array_size(), 99757u);
  EXPECT_EQ(llm->find("tokenizer.ggml.merges")->strings()[0], "Ġ Ġ");
  EXPECT_EQ(llm->get<std::string_view>("tokenizer.ggml.pre").value(), "deepseek-llm");
  EXPECT_FALSE(llm->get<bool>("tokenizer.ggml.add_eos_token").value());
}

TEST(Reader, MissingFileNamesThePath) {
  auto f = File::open("/nonexistent/model.gguf");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message().find("/nonexistent/model.gguf"), std::string::npos);
}

// Two tensors declared, their data absent: what `onecard gen --header-only` writes, with or without its key.
std::vector<uint8_t> header_only(bool marked) {
  Writer w;
  w.set("general.name", MetaValue::string("shapes"));
  if (marked) w.set(std::string(kHeaderOnlyKey), MetaValue::boolean(true));
  EXPECT_TRUE(w.add_tensor("a", {64, 2}, GgmlType::F32).ok());
  EXPECT_TRUE(w.add_tensor("b", {32}, GgmlType::F16).ok());
  return w.header_bytes();
}

TEST(HeaderOnly, TheNormalOpenRefusesMissingDataAsBefore) {
  auto f = File::parse(header_only(false), "mem");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().message().find("mem: offset "), 0u) << f.error().message();
  EXPECT_NE(
      f.error().message().find("tensor 'a': 512 bytes of data at offset 0 extend past the end of the file "
                               "(the data section holds 0 bytes)"),
      std::string::npos)
      << f.error().message();
  EXPECT_EQ(f.error().message().find("header-only"), std::string::npos) << f.error().message();
}

TEST(HeaderOnly, TheNormalOpenSaysAMarkedFileCanOnlyBeInspected) {
  auto f = File::parse(header_only(true), "r1.gguf");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(
      f.error().message().find("extend past the end of the file (the data section holds 0 bytes); this is "
                               "a header-only file (onecard.header_only is set"),
      std::string::npos)
      << f.error().message();
  EXPECT_NE(f.error().message().find("it cannot be loaded, only inspected (onecard inspect r1.gguf --plan)"),
            std::string::npos)
      << f.error().message();
}

TEST(HeaderOnly, TheHeaderModeReadsShapesWithoutData) {
  for (bool marked : {false, true}) {
    const auto bytes = header_only(marked);
    auto f = File::parse_header(bytes, "mem");
    ASSERT_TRUE(f.ok()) << f.error().message();
    EXPECT_FALSE(f->has_data());
    ASSERT_EQ(f->tensors().size(), 2u);
    EXPECT_EQ(f->tensor("a")->n_bytes, 512u);
    EXPECT_EQ(f->tensor("b")->offset, 512u);
    EXPECT_EQ(f->tensor("a")->data, nullptr);
    EXPECT_EQ(f->tensor("b")->data, nullptr);
    EXPECT_EQ(f->get<std::string>("general.name").value(), "shapes");
  }
  // Part of the data present is still no data: no tensor may be read from a half file.
  auto bytes = header_only(false);
  bytes.resize(bytes.size() + 512);
  auto f = File::parse_header(bytes, "mem");
  ASSERT_TRUE(f.ok()) << f.error().message();
  EXPECT_FALSE(f->has_data());
  EXPECT_EQ(f->tensor("a")->data, nullptr);
}

TEST(HeaderOnly, TheHeaderModeOfACompleteFileHasItsData) {
  const std::string path = test::golden_dir() + "/models/tiny-v3-f32.gguf";
  auto full = File::open(path);
  auto header = File::open_header(path);
  ASSERT_TRUE(full.ok() && header.ok());
  EXPECT_TRUE(header->has_data());
  EXPECT_TRUE(full->has_data());
  ASSERT_EQ(header->tensors().size(), full->tensors().size());
  EXPECT_EQ(header->tensors()[0].data - header->bytes().data(),
            full->tensors()[0].data - full->bytes().data());
}

TEST(HeaderOnly, TheHeaderModeStillChecksOffsets) {
  Writer w;
  ASSERT_TRUE(w.add_tensor("a", {64}, GgmlType::F32).ok());
  ASSERT_TRUE(w.add_tensor("b", {64}, GgmlType::F32).ok());
  std::vector<uint8_t> infos = w.header_bytes();
  // Magic, version and counts (24 bytes), then two infos of name (8 + 1), dims (4), ne (8), type (4) and
  // offset (8): b's offset is the last 8 bytes before the padding.
  constexpr size_t end_of_infos = 24 + 2 * (8 + 1 + 4 + 8 + 4 + 8);
  const uint64_t overlap = 128;
  std::memcpy(infos.data() + end_of_infos - 8, &overlap, 8);
  auto f = File::parse_header(infos, "mem");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message().find("tensor 'b' (data [128, 384)) overlaps tensor 'a' (data [0, 256))"),
            std::string::npos)
      << f.error().message();
  const uint64_t misaligned = 260;
  std::memcpy(infos.data() + end_of_infos - 8, &misaligned, 8);
  f = File::parse_header(infos, "mem");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message().find("data offset 260 is not a multiple of the alignment 32"),
            std::string::npos)
      << f.error().message();
}

}  // namespace
}  // namespace onecard::gguf
