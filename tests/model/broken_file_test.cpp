// Files that parse as GGUF but do not describe a usable DeepSeek model are refused before any computation,
// with the tensor and the shape that was expected.
#include <functional>

#include <gtest/gtest.h>

#include "common/test_paths.h"
#include "gguf/writer.h"
#include "model/deepseek2.h"

namespace onecard::model {
namespace {

// Copies the golden tiny-v3-f32 model, letting the caller drop or reshape tensors and change metadata.
struct Edit {
  std::function<void(gguf::Writer&)> metadata = [](gguf::Writer&) {};
  std::string drop;
  std::string reshape;
  std::vector<uint64_t> shape;
};

std::string rewrite(const std::string& name, const Edit& e) {
  auto src = gguf::File::open(test::golden_dir() + "/models/tiny-v3-f32.gguf").value();
  gguf::Writer w;
  for (const auto& kv : src.metadata()) w.set(std::string(kv.key), gguf::MetaValue::from(kv.value));
  e.metadata(w);
  std::vector<const gguf::TensorInfo*> kept;
  for (const auto& t : src.tensors()) {
    if (t.name == e.drop) continue;
    std::vector<uint64_t> ne(t.dims().begin(), t.dims().end());
    if (t.name == e.reshape) ne = e.shape;
    EXPECT_TRUE(w.add_tensor(std::string(t.name), ne, t.type).ok());
    kept.push_back(&t);
  }
  const std::string path = test::temp_path(name + ".gguf");
  EXPECT_TRUE(w.open(path).ok());
  for (size_t i = 0; i < kept.size(); ++i) {
    std::vector<uint8_t> data(w.tensors()[i].n_bytes);
    std::copy_n(kept[i]->data, std::min<uint64_t>(data.size(), kept[i]->n_bytes), data.begin());
    EXPECT_TRUE(w.write_data(data).ok());
  }
  EXPECT_TRUE(w.finish().ok());
  return path;
}

std::string load_error(const std::string& path) {
  auto m = DeepSeek2::load(path, LoadOptions{});
  return m.ok() ? "" : m.error().message();
}

TEST(BrokenFile, UnmodifiedCopyLoads) {
  EXPECT_EQ(load_error(rewrite("copy", {})), "");
}

TEST(BrokenFile, MissingTensorIsNamedWithItsShape) {
  Edit e;
  e.drop = "blk.1.ffn_up_exps.weight";
  EXPECT_NE(load_error(rewrite("missing", e))
                .find("missing tensor 'blk.1.ffn_up_exps.weight' (expected shape [256, 256, 16])"),
            std::string::npos);
}

TEST(BrokenFile, WrongShapeIsNamedWithBothShapes) {
  Edit e;
  e.reshape = "blk.0.attn_q_b.weight";
  e.shape = {256, 320};
  EXPECT_NE(load_error(rewrite("shape", e))
                .find("tensor 'blk.0.attn_q_b.weight' has shape [256, 320], expected [256, 384]"),
            std::string::npos);
}

TEST(BrokenFile, ExpertCountThatDoesNotMatchTheTensors) {
  Edit e;
  e.metadata = [](gguf::Writer& w) { w.set("deepseek2.expert_count", gguf::MetaValue::u32(12)); };
  EXPECT_NE(load_error(rewrite("experts", e))
                .find("tensor 'blk.1.ffn_gate_inp.weight' has shape [256, 16], expected [256, 12]"),
            std::string::npos);
}

TEST(BrokenFile, UnsupportedWeightTypeIsNamed) {
  // Rewritten as I32 (same 4 bytes per element): a type no matmul kernel takes.
  auto src = gguf::File::open(test::golden_dir() + "/models/tiny-v3-f32.gguf").value();
  gguf::Writer w;
  for (const auto& kv : src.metadata()) w.set(std::string(kv.key), gguf::MetaValue::from(kv.value));
  for (const auto& t : src.tensors()) {
    const auto type = t.name == "blk.0.attn_output.weight" ? gguf::GgmlType::I32 : t.type;
    ASSERT_TRUE(w.add_tensor(std::string(t.name), {t.dims().begin(), t.dims().end()}, type).ok());
  }
  const std::string path = test::temp_path("i32.gguf");
  ASSERT_TRUE(w.open(path).ok());
  for (const auto& t : src.tensors()) ASSERT_TRUE(w.write_data(t.bytes()).ok());
  ASSERT_TRUE(w.finish().ok());
  const std::string err = load_error(path);
  EXPECT_NE(err.find("tensor 'blk.0.attn_output.weight'"), std::string::npos) << err;
  EXPECT_NE(err.find("I32 cannot be multiplied"), std::string::npos) << err;
}

}  // namespace
}  // namespace onecard::model
