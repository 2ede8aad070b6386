// The GGUF imatrix format: a round trip, llama.cpp's shapes (one-matrix entries stored 1-D, a single count
// shared by all experts), and every malformed file a clear error naming the file and the tensor or key.
#include "model/imatrix_file.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include <gtest/gtest.h>

#include "common/test_paths.h"
#include "gguf/writer.h"

namespace onecard::model {
namespace {

Imatrix sample() {
  Imatrix m;
  m.datasets = {"calibration.txt", "more.txt"};
  m.chunk_count = 3;
  m.chunk_size = 512;
  ImatrixEntry dense{"blk.0.attn_q_a.weight", 4, 1, {1, 2, 3, 4}, {8}};
  ImatrixEntry experts{"blk.1.ffn_down_exps.weight", 2, 3, {1, 1, 0, 0, 6, 9}, {2, 0, 3}};
  m.entries = {experts, dense};
  return m;
}

struct Tensor {
  std::string name;
  std::vector<uint64_t> ne;
  std::vector<float> data;
  gguf::GgmlType type = gguf::GgmlType::F32;
};

// A hand-made GGUF: the metadata of an imatrix unless `meta` says otherwise, and these tensors.
void write_gguf(const std::string& path, const std::vector<Tensor>& tensors,
                const std::vector<std::pair<std::string, gguf::MetaValue>>& meta = {
                    {"general.type", gguf::MetaValue::string("imatrix")},
                    {"imatrix.datasets", gguf::MetaValue::strings({"a.txt"})},
                    {"imatrix.chunk_count", gguf::MetaValue::u32(1)},
                    {"imatrix.chunk_size", gguf::MetaValue::u32(8)}}) {
  gguf::Writer w;
  for (const auto& [k, v] : meta) w.set(k, v);
  for (const Tensor& t : tensors) ASSERT_TRUE(w.add_tensor(t.name, t.ne, t.type).ok());
  ASSERT_TRUE(w.open(path).ok());
  for (const Tensor& t : tensors) {
    std::vector<uint8_t> bytes(w.tensors()[&t - tensors.data()].n_bytes);
    std::memcpy(bytes.data(), t.data.data(), std::min(bytes.size(), t.data.size() * sizeof(float)));
    ASSERT_TRUE(w.write_data(bytes).ok());
  }
  ASSERT_TRUE(w.finish().ok());
}

std::string read_error(const std::string& path) {
  auto r = read_imatrix(path);
  EXPECT_FALSE(r.ok()) << path << " was read";
  return r.ok() ? "" : r.error().message();
}

TEST(ImatrixFile, RoundTrip) {
  const std::string path = test::temp_path("round.imatrix.gguf");
  ASSERT_TRUE(write_imatrix(path, sample()).ok());
  EXPECT_FALSE(std::filesystem::exists(path + ".part"));
  auto r = read_imatrix(path);
  ASSERT_TRUE(r.ok()) << r.error().message();
  const Imatrix& m = *r;
  EXPECT_EQ(m.datasets, sample().datasets);
  EXPECT_EQ(m.chunk_count, 3u);
  EXPECT_EQ(m.chunk_size, 512u);
  ASSERT_EQ(m.entries.size(), 2u);
  const ImatrixEntry* d = m.find("blk.0.attn_q_a.weight");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->n_per_row, 4);
  EXPECT_EQ(d->n_mat, 1);
  EXPECT_EQ(d->sum2, (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(d->counts, (std::vector<float>{8}));
  EXPECT_EQ(mean_squares(*d, 0), (std::vector<float>{0.125f, 0.25f, 0.375f, 0.5f}));
  const ImatrixEntry* x = m.find("blk.1.ffn_down_exps.weight");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->n_per_row, 2);
  EXPECT_EQ(x->n_mat, 3);
  EXPECT_EQ(x->sum2, (std::vector<float>{1, 1, 0, 0, 6, 9}));
  EXPECT_EQ(x->counts, (std::vector<float>{2, 0, 3}));
  EXPECT_EQ(mean_squares(*x, 0), (std::vector<float>{0.5f, 0.5f}));
  EXPECT_TRUE(mean_squares(*x, 1).empty());  // no token reached expert 1
  EXPECT_EQ(mean_squares(*x, 2), (std::vector<float>{2, 3}));
  EXPECT_TRUE(mean_squares(*x, 3).empty());
  EXPECT_EQ(m.find("output.weight"), nullptr);
}

// The layout llama.cpp's writer produces: the GGUF tensors' trailing 1-dimensions dropped, so a one-matrix
// entry is [n_per_row] and its count [1]; its optional "<name>.in_sum" tensor is ignored.
TEST(ImatrixFile, ReadsLlamaCppLayout) {
  const std::string path = test::temp_path("llama.imatrix.gguf");
  write_gguf(path, {{"blk.0.ffn_down.weight.counts", {1}, {4}},
                    {"blk.0.ffn_down.weight.in_sum", {3}, {1, 1, 1}},
                    {"blk.0.ffn_down.weight.in_sum2", {3}, {4, 8, 12}},
                    {"blk.1.ffn_up_exps.weight.in_sum2", {2, 2}, {2, 2, 4, 4}},
                    {"blk.1.ffn_up_exps.weight.counts", {1}, {2}}});
  auto r = read_imatrix(path);
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_EQ(r->entries.size(), 2u);
  const ImatrixEntry* d = r->find("blk.0.ffn_down.weight");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->n_per_row, 3);
  EXPECT_EQ(d->n_mat, 1);
  EXPECT_EQ(mean_squares(*d, 0), (std::vector<float>{1, 2, 3}));
  const ImatrixEntry* e = r->find("blk.1.ffn_up_exps.weight");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->n_mat, 2);
  EXPECT_EQ(e->counts, (std::vector<float>{2, 2}));  // one shared count, one per matrix after reading
  EXPECT_EQ(mean_squares(*e, 1), (std::vector<float>{2, 2}));
}

TEST(ImatrixFile, TruncatedFileIsAnErrorNamingTheFile) {
  const std::string path = test::temp_path("truncated.imatrix.gguf");
  ASSERT_TRUE(write_imatrix(path, sample()).ok());
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  EXPECT_NE(read_error(path).find(path), std::string::npos);
}

TEST(ImatrixFile, ModelFileIsNotAnImatrix) {
  const std::string model = test::golden_dir() + "/models/tiny-v3-f32.gguf";
  const std::string e = read_error(model);
  EXPECT_NE(e.find(model), std::string::npos) << e;
  EXPECT_NE(e.find("not an imatrix"), std::string::npos) << e;
  EXPECT_NE(e.find("general.type"), std::string::npos) << e;
}

TEST(ImatrixFile, MissingMetadataNamesTheKey) {
  const std::string path = test::temp_path("nometa.imatrix.gguf");
  write_gguf(path, {{"w.in_sum2", {2}, {1, 1}}, {"w.counts", {1}, {1}}},
             {{"general.type", gguf::MetaValue::string("imatrix")},
              {"imatrix.datasets", gguf::MetaValue::strings({"a.txt"})},
              {"imatrix.chunk_size", gguf::MetaValue::u32(8)}});
  EXPECT_NE(read_error(path).find("imatrix.chunk_count"), std::string::npos);
  write_gguf(path, {{"w.in_sum2", {2}, {1, 1}}, {"w.counts", {1}, {1}}},
             {{"general.type", gguf::MetaValue::string("imatrix")},
              {"imatrix.datasets", gguf::MetaValue::u32(1)},
              {"imatrix.chunk_count", gguf::MetaValue::u32(1)},
              {"imatrix.chunk_size", gguf::MetaValue::u32(8)}});
  EXPECT_NE(read_error(path).find("imatrix.datasets"), std::string::npos);
}

TEST(ImatrixFile, CountsThatDoNotMatchTheSumsNameTheTensor) {
  const std::string path = test::temp_path("mismatch.imatrix.gguf");
  write_gguf(path, {{"blk.0.ffn_up_exps.weight.in_sum2", {2, 3}, {1, 1, 1, 1, 1, 1}},
                    {"blk.0.ffn_up_exps.weight.counts", {1, 2}, {1, 1}}});
  const std::string e = read_error(path);
  EXPECT_NE(e.find(path), std::string::npos) << e;
  EXPECT_NE(e.find("blk.0.ffn_up_exps.weight.counts"), std::string::npos) << e;
}

TEST(ImatrixFile, MissingPartnerTensorIsNamed) {
  const std::string path = test::temp_path("partner.imatrix.gguf");
  write_gguf(
      path,
      {{"a.weight.in_sum2", {2}, {1, 1}}, {"a.weight.counts", {1}, {1}}, {"b.weight.in_sum2", {2}, {1, 1}}});
  std::string e = read_error(path);
  EXPECT_NE(e.find("b.weight.counts"), std::string::npos) << e;
  write_gguf(path, {{"c.weight.counts", {1}, {1}}});
  e = read_error(path);
  EXPECT_NE(e.find("c.weight.in_sum2"), std::string::npos) << e;
}

TEST(ImatrixFile, NegativeOrNotFiniteValuesAreNamed) {
  const std::string path = test::temp_path("values.imatrix.gguf");
  const float nan = std::numeric_limits<float>::quiet_NaN();
  write_gguf(path, {{"a.weight.in_sum2", {2}, {1, nan}}, {"a.weight.counts", {1}, {1}}});
  std::string e = read_error(path);
  EXPECT_NE(e.find("a.weight.in_sum2"), std::string::npos) << e;
  EXPECT_NE(e.find("element 1"), std::string::npos) << e;
  write_gguf(path, {{"a.weight.in_sum2", {2}, {1, 1}}, {"a.weight.counts", {1}, {-2}}});
  e = read_error(path);
  EXPECT_NE(e.find("a.weight.counts"), std::string::npos) << e;
  write_gguf(path, {{"a.weight.in_sum2", {2}, {1, 1}}, {"a.weight.counts", {1}, {1}, gguf::GgmlType::F16}});
  e = read_error(path);
  EXPECT_NE(e.find("a.weight.counts"), std::string::npos) << e;
  EXPECT_NE(e.find("F32"), std::string::npos) << e;
}

TEST(ImatrixFile, NoEntriesIsAnError) {
  const std::string path = test::temp_path("empty.imatrix.gguf");
  write_gguf(path, {});
  EXPECT_NE(read_error(path).find("in_sum2"), std::string::npos);
}

TEST(ImatrixFile, WriteRejectsInconsistentEntriesAndLeavesNoFile) {
  const std::string path = test::temp_path("bad-write.imatrix.gguf");
  Imatrix m = sample();
  m.entries[0].counts.pop_back();
  auto s = write_imatrix(path, m);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("blk.1.ffn_down_exps.weight"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".part"));
  s = write_imatrix(test::temp_path("no-such-dir/x.gguf"), sample());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("no-such-dir"), std::string::npos);
}

}  // namespace
}  // namespace onecard::model
