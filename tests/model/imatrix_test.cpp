// The activation observer and the imatrix collector on the golden models: every weight matrix the forward
// multiplies gets an entry of its tensor's shape, the token counts are those of the routing, one sum is
// checked against a computation made here from the file's tensors, and the observer changes no logits.
#include "model/imatrix_collector.h"

#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "base/half.h"
#include "common/golden_logits.h"
#include "common/test_paths.h"
#include "model/deepseek2.h"

namespace onecard::model {
namespace {

constexpr int kTokens = 40;

std::string model_path(const std::string& name) {
  return test::golden_dir() + "/models/" + name + ".gguf";
}

std::unique_ptr<DeepSeek2> load(const std::string& name) {
  LoadOptions o;
  o.n_ctx = 64;
  o.n_batch = 16;  // several forward steps, which must add up
  o.n_threads = 2;
  auto m = DeepSeek2::load(model_path(name), o);
  EXPECT_TRUE(m.ok()) << m.error().message();
  return m.ok() ? std::move(m).value() : nullptr;
}

std::vector<int32_t> tokens(const std::string& name) {
  auto all = test::read_all<int32_t>(test::golden_dir() + "/models/" + name + ".tokens.i32");
  all.resize(kTokens);
  return all;
}

std::vector<float> forward(DeepSeek2& m, const std::vector<int32_t>& ids) {
  const KvCache cache(m.hparams(), 1, m.n_ctx(), KvType::kF32);
  std::vector<BatchToken> batch;
  for (size_t i = 0; i < ids.size(); ++i) batch.push_back({ids[i], static_cast<int32_t>(i), 0, true});
  std::vector<float> logits;
  auto st = m.forward(batch, cache, logits);
  EXPECT_TRUE(st.ok()) << st.error().message();
  return logits;
}

std::vector<float> floats(const gguf::TensorInfo& t, uint64_t first, uint64_t n) {
  std::vector<float> out(n);
  for (uint64_t i = 0; i < n; ++i) {
    if (t.type == gguf::GgmlType::F32) {
      std::memcpy(&out[i], t.data + (first + i) * 4, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, t.data + (first + i) * 2, 2);
      out[i] = fp16_to_fp32(h);
    }
  }
  return out;
}

class GoldenImatrix : public testing::TestWithParam<std::string> {};

TEST_P(GoldenImatrix, HasEveryWeightMatrixWithItsShapeAndTokenCounts) {
  auto m = load(GetParam());
  ASSERT_NE(m, nullptr);
  ImatrixCollector collector;
  ASSERT_TRUE(m->set_observer(&collector).ok());
  forward(*m, tokens(GetParam()));
  ASSERT_TRUE(collector.status().ok()) << collector.status().error().message();
  const model::Imatrix im = collector.result({"t.txt"}, 1, kTokens);

  std::set<std::string> expected, got;
  for (const auto& e : im.entries) got.insert(e.name);
  const HParams& hp = m->hparams();
  for (const gguf::TensorInfo& t : m->file().tensors()) {
    // token_embd is looked up, not multiplied: nothing observes its input.
    if (t.n_dims < 2 || t.name == "token_embd.weight") continue;
    const std::string name(t.name);
    expected.insert(name);
    const ImatrixEntry* e = im.find(name);
    ASSERT_NE(e, nullptr) << name;
    EXPECT_EQ(e->n_per_row, static_cast<int64_t>(t.ne[0])) << name;
    EXPECT_EQ(e->n_mat, static_cast<int64_t>(t.ne[2])) << name;
    double total = 0;
    for (float c : e->counts) total += c;
    if (name.find("_exps") != std::string::npos) {
      EXPECT_EQ(total, double{kTokens} * hp.n_expert_used) << name;
    } else {
      for (float c : e->counts) EXPECT_EQ(c, kTokens) << name;  // per head for attn_k_b / attn_v_b
    }
    // A matrix no token reached has nothing summed; one that was reached has (the inputs are not zero).
    for (int64_t mat = 0; mat < e->n_mat; ++mat) {
      double sum = 0;
      for (int64_t c = 0; c < e->n_per_row; ++c) sum += e->sum2[mat * e->n_per_row + c];
      EXPECT_EQ(sum > 0.0, e->counts[mat] > 0) << name << " matrix " << mat;
    }
  }
  EXPECT_EQ(got, expected);
}

// The first matrix's input is rms_norm(embedding) * attn_norm, computed here from the file's tensors.
TEST_P(GoldenImatrix, FirstProjectionSumsMatchADirectComputation) {
  auto m = load(GetParam());
  ASSERT_NE(m, nullptr);
  ImatrixCollector collector;
  ASSERT_TRUE(m->set_observer(&collector).ok());
  const auto ids = tokens(GetParam());
  forward(*m, ids);
  const model::Imatrix im = collector.result({}, 1, kTokens);
  const HParams& hp = m->hparams();
  const std::string name = hp.q_lora_rank > 0 ? "blk.0.attn_q_a.weight" : "blk.0.attn_q.weight";
  const ImatrixEntry* e = im.find(name);
  ASSERT_NE(e, nullptr);

  const uint64_t d = hp.n_embd;
  const gguf::TensorInfo* embd = m->file().tensor("token_embd.weight");
  const gguf::TensorInfo* norm = m->file().tensor("blk.0.attn_norm.weight");
  ASSERT_TRUE(embd != nullptr && norm != nullptr);
  const std::vector<float> w = floats(*norm, 0, d);
  std::vector<double> want(d, 0.0);
  for (int32_t id : ids) {
    const std::vector<float> x = floats(*embd, static_cast<uint64_t>(id) * d, d);
    double ms = 0;
    for (float v : x) ms += double{v} * v;
    const double inv = 1.0 / std::sqrt(ms / static_cast<double>(d) + hp.rms_eps);
    for (uint64_t c = 0; c < d; ++c) {
      const double y = x[c] * inv * w[c];
      want[c] += y * y;
    }
  }
  ASSERT_EQ(e->sum2.size(), d);
  for (uint64_t c = 0; c < d; ++c) EXPECT_NEAR(e->sum2[c], want[c], 1e-4 * want[c] + 1e-6) << c;
}

TEST_P(GoldenImatrix, ObserverChangesNoLogits) {
  auto m = load(GetParam());
  ASSERT_NE(m, nullptr);
  const auto ids = tokens(GetParam());
  const std::vector<float> before = forward(*m, ids);
  ImatrixCollector collector;
  ASSERT_TRUE(m->set_observer(&collector).ok());
  const std::vector<float> observed = forward(*m, ids);
  ASSERT_TRUE(m->set_observer(nullptr).ok());
  const std::vector<float> after = forward(*m, ids);
  EXPECT_EQ(after, before);  // unset again: bit for bit what it was
  // Observed: the same, except that split-layout files take the absorbed attention, equal in exact math.
  ASSERT_EQ(observed.size(), before.size());
  double max_diff = 0, max_abs = 0;
  for (size_t i = 0; i < before.size(); ++i) {
    max_diff = std::max(max_diff, double{std::fabs(observed[i] - before[i])});
    max_abs = std::max(max_abs, double{std::fabs(before[i])});
  }
  EXPECT_LE(max_diff, 1e-4 * max_abs) << "max |logit| " << max_abs;
  // Nothing is reported once the observer is unset.
  const model::Imatrix im = collector.result({}, 1, kTokens);
  EXPECT_EQ(im.find("output.weight")->counts[0], kTokens);
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenImatrix,
                         testing::Values("tiny-v3-f32", "tiny-v3-f16-kbvb", "tiny-v2lite-f16"),
                         [](const auto& p) {
                           std::string n = p.param;
                           for (char& c : n) c = c == '-' ? '_' : c;
                           return n;
                         });

// Keeps every observed row with the matrices it went to.
struct Recorder : ActivationObserver {
  struct Rows {
    std::vector<std::vector<float>> x;
    std::vector<std::vector<int32_t>> mats;
  };
  std::map<std::string, Rows> seen;
  void observe(const ObservedInput& in) override {
    Rows& r = seen[std::string(in.weight)];
    for (int64_t i = 0; i < in.rows; ++i) {
      r.x.emplace_back(in.x + i * in.stride, in.x + i * in.stride + in.cols);
      if (in.mats != nullptr)
        r.mats.emplace_back(in.mats + i * in.mats_per_row, in.mats + (i + 1) * in.mats_per_row);
    }
  }
};

// ffn_down_exps's input, which the MoE primitive makes inside, against silu(gate_e x) * up_e x computed here
// from the file's F32 experts and the observed input and routing of ffn_gate_exps: per expert, the sums of
// squares agree.
TEST(ImatrixObserver, RoutedDownInputIsSiluGateTimesUpOfItsExpert) {
  auto m = load("tiny-v3-f32");
  ASSERT_NE(m, nullptr);
  Recorder rec;
  ASSERT_TRUE(m->set_observer(&rec).ok());
  forward(*m, tokens("tiny-v3-f32"));
  const HParams& hp = m->hparams();
  const int il = static_cast<int>(hp.n_dense_lead);  // the first MoE layer
  const std::string p = "blk." + std::to_string(il) + ".";
  const Recorder::Rows& in = rec.seen[p + "ffn_gate_exps.weight"];
  const Recorder::Rows& down = rec.seen[p + "ffn_down_exps.weight"];
  const gguf::TensorInfo* gate = m->file().tensor(p + "ffn_gate_exps.weight");
  const gguf::TensorInfo* up = m->file().tensor(p + "ffn_up_exps.weight");
  ASSERT_TRUE(gate != nullptr && up != nullptr);
  const uint64_t d = gate->ne[0], ff = gate->ne[1], E = gate->ne[2];
  ASSERT_EQ(in.x.size(), static_cast<size_t>(kTokens));
  ASSERT_EQ(down.x.size(), static_cast<size_t>(kTokens) * hp.n_expert_used);

  std::vector<double> want(E * ff, 0.0), got(E * ff, 0.0);
  for (size_t t = 0; t < in.x.size(); ++t) {
    for (int32_t e : in.mats[t]) {
      const std::vector<float> g = floats(*gate, e * ff * d, ff * d), u = floats(*up, e * ff * d, ff * d);
      for (uint64_t r = 0; r < ff; ++r) {
        double gr = 0, ur = 0;
        for (uint64_t c = 0; c < d; ++c)
          gr += double{g[r * d + c]} * in.x[t][c], ur += double{u[r * d + c]} * in.x[t][c];
        const double h = gr / (1.0 + std::exp(-gr)) * ur;
        want[e * ff + r] += h * h;
      }
    }
  }
  for (size_t i = 0; i < down.x.size(); ++i) {
    ASSERT_EQ(down.mats[i].size(), 1u);
    const auto e = static_cast<uint64_t>(down.mats[i][0]);
    for (uint64_t r = 0; r < ff; ++r) got[e * ff + r] += double{down.x[i][r]} * down.x[i][r];
  }
  for (uint64_t i = 0; i < E * ff; ++i) EXPECT_NEAR(got[i], want[i], 1e-3 * want[i] + 1e-6) << i;
}

TEST(ImatrixCollector, CountsRowsPerMatrixAndRejectsNonFiniteInput) {
  ImatrixCollector c;
  const float x[] = {1, 2, 3, 4, 5, 6};  // two rows of 3, stride 3
  const int32_t mats[] = {0, 2, 2, 1};   // two matrices per row
  c.observe({"e.weight", 3, x, 2, 3, 3, mats, 2});
  c.observe({"d.weight", 1, x, 2, 2, 3, nullptr, 0});  // columns 0 and 1 of each row
  ASSERT_TRUE(c.status().ok());
  const model::Imatrix im = c.result({"x"}, 2, 8);
  ASSERT_EQ(im.entries.size(), 2u);
  const ImatrixEntry* e = im.find("e.weight");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->counts, (std::vector<float>{1, 1, 2}));
  EXPECT_EQ(e->sum2, (std::vector<float>{1, 4, 9, 16, 25, 36, 17, 29, 45}));
  const ImatrixEntry* d = im.find("d.weight");
  EXPECT_EQ(d->counts, (std::vector<float>{2}));
  EXPECT_EQ(d->sum2, (std::vector<float>{17, 29}));

  const float bad[] = {1, NAN};
  c.observe({"n.weight", 1, bad, 1, 2, 2, nullptr, 0});
  ASSERT_FALSE(c.status().ok());
  EXPECT_NE(c.status().error().message().find("n.weight"), std::string::npos);
}

}  // namespace
}  // namespace onecard::model
