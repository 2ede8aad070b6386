// Every op of the backend interface on every backend present, against the CPU: the CPU at each ISA this
// machine runs and, where a card is found, CUDA. Inputs are random, sizes odd, batches of several tokens;
// each backend gets its inputs in its own memory. CPU backends are held to the CPU on scalar kernels: their
// integer matmuls quantize activations identically, so they differ only in summation order, and the MoE
// quantizes its hidden rows a second time, where one 8-bit level may move (moe_test.cpp explains the bound).
// Other devices multiply float activations, so they are held to the definition (cpu::matmul_reference:
// rows dequantized by the scalar reference, sums in double) instead.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "base/rng.h"
#include "cpu/cpu_backend.h"
#include "cpu/matmul.h"
#include "cpu/random_weights.h"
#ifdef ONECARD_HAVE_CUDA
#include "cuda/backend.h"
#endif

namespace onecard::backend {
namespace {

using gguf::GgmlType;

std::unique_ptr<cpu::CpuBackend> cpu_backend(cpu::Isa isa, int threads) {
  return std::make_unique<cpu::CpuBackend>(std::make_unique<ThreadPool>(threads),
                                           cpu::CpuBackendOptions{.isa = isa, .repack_experts = true});
}

// The CPU at every ISA it supports, with two threads, and every CUDA card's backend.
std::vector<std::unique_ptr<Backend>> backends_present() {
  std::vector<std::unique_ptr<Backend>> out;
  for (cpu::Isa isa : cpu::supported_isas()) out.push_back(cpu_backend(isa, 2));
#ifdef ONECARD_HAVE_CUDA
  if (auto cuda = cuda::make_backend(0); cuda.ok()) out.push_back(std::move(cuda).value());
#endif
  return out;
}

bool on_cpu(const Backend& be) {
  return be.device().kind == DeviceKind::kCpu;
}

std::vector<float> gaussian(size_t n, uint64_t seed, float scale = 1.0f) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = rng.normal() * scale;
  return v;
}

// sqrt(sum (a - b)^2 / sum b^2)
double rel_error(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    norm += static_cast<double>(b[i]) * b[i];
  }
  return norm == 0 ? diff : std::sqrt(diff / norm);
}

// A copy of host values in a backend's memory, read back by host().
template <class T>
class On {
 public:
  On(Backend& be, const std::vector<T>& values) : be_(be), n_(values.size()) {
    p_ = static_cast<T*>(be_.alloc(n_ * sizeof(T)));
    if (n_ > 0) be_.upload(p_, values.data(), n_ * sizeof(T));
  }
  On(Backend& be, size_t n) : On(be, std::vector<T>(n)) {}
  ~On() { be_.release(p_); }
  On(const On&) = delete;
  On& operator=(const On&) = delete;

  T* get() const { return p_; }
  std::vector<T> host() const {
    std::vector<T> v(n_);
    if (n_ > 0) be_.download(v.data(), p_, n_ * sizeof(T));
    return v;
  }

 private:
  Backend& be_;
  size_t n_;
  T* p_;
};

class BackendOps : public ::testing::Test {
 protected:
  std::unique_ptr<cpu::CpuBackend> reference_ = cpu_backend(cpu::Isa::Scalar, 1);
  std::vector<std::unique_ptr<Backend>> backends_ = backends_present();
};

TEST_F(BackendOps, Embed) {
  constexpr int64_t kVocab = 19, kDim = 512;
  const std::vector<BatchToken> batch = {{3, 0, 0, false}, {18, 1, 0, false}, {0, 2, 0, true}};
  const int n = static_cast<int>(batch.size());
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q8_0, GgmlType::F16}) {
    const std::vector<uint8_t> bytes = cpu::testing::random_weights(type, kVocab, kDim, 7);
    const Weight table = make_weight(type, kDim, kVocab, bytes.data());
    std::vector<float> want(n * kDim);
    reference_->embed(table, batch.data(), n, want.data(), kDim);
    for (auto& be : backends_) {
      On<float> got(*be, want.size());
      be->embed(be->place(table, "token_embd").value(), batch.data(), n, got.get(), kDim);
      // The CPU's decoders are the reference's; a GPU may fuse d * q - m into one rounding.
      if (on_cpu(*be)) {
        EXPECT_EQ(got.host(), want) << gguf::type_name(type) << " on " << be->name();
      } else {
        EXPECT_LE(rel_error(got.host(), want), 1e-6) << gguf::type_name(type) << " on " << be->name();
      }
    }
  }
}

TEST_F(BackendOps, RmsNormStridedAndInPlace) {
  constexpr int kTokens = 5;
  constexpr int64_t kDim = 37, kLd = 41;
  const std::vector<float> x = gaussian(kTokens * kLd, 1), w = gaussian(kDim, 2);
  const Vector norm{w.data(), kDim};
  std::vector<float> want = x;
  reference_->rms_norm(x.data(), kLd, norm, 1e-6f, kTokens, want.data(), kLd);
  for (int t = 0; t < kTokens; ++t) {  // the reference itself, against the definition
    double sum2 = 0;
    for (int64_t i = 0; i < kDim; ++i) sum2 += static_cast<double>(x[t * kLd + i]) * x[t * kLd + i];
    const double inv = 1.0 / std::sqrt(sum2 / kDim + 1e-6);
    for (int64_t i = 0; i < kDim; ++i) EXPECT_NEAR(want[t * kLd + i], x[t * kLd + i] * inv * w[i], 1e-5);
  }
  for (auto& be : backends_) {
    On<float> y(*be, x);
    be->rms_norm(y.get(), kLd, be->place(norm, "attn_norm").value(), 1e-6f, kTokens, y.get(), kLd);
    // Past w.n each row is untouched.
    EXPECT_LE(rel_error(y.host(), want), 1e-6) << be->name();
  }
}

TEST_F(BackendOps, MatmulEveryFormat) {
  constexpr int kTokens = 11;  // more than one pass of the CUDA kernel's tokens
  constexpr int64_t kRows = 37, kCols = 512, kLdy = 40;
  const std::vector<float> x = gaussian(kTokens * kCols, 3);
  for (GgmlType type : cpu::testing::all_matmul_types()) {
    const std::vector<uint8_t> bytes = cpu::testing::random_weights(type, kRows, kCols, 11);
    const Weight w = make_weight(type, kCols, kRows, bytes.data());
    std::vector<float> want(kTokens * kLdy, 0.0f), exact(kTokens * kLdy, 0.0f);
    reference_->matmul(w, x.data(), kCols, kTokens, want.data(), kLdy);
    cpu::matmul_reference(cpu::to_matrix(w), x.data(), kCols, kTokens, exact.data(), kLdy);
    for (auto& be : backends_) {
      auto placed = be->place(w, "w");
      if (!placed.ok()) {
        // Every backend multiplies the formats of what the GPU holds in published files.
        for (GgmlType needed :
             {GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::Q4_0,
              GgmlType::IQ4_XS, GgmlType::BF16, GgmlType::F16, GgmlType::F32}) {
          EXPECT_NE(type, needed) << be->name() << ": " << placed.error().message();
        }
        continue;
      }
      On<float> xd(*be, x), y(*be, want.size());
      be->matmul(placed.value(), xd.get(), kCols, kTokens, y.get(), kLdy);
      EXPECT_LE(rel_error(y.host(), on_cpu(*be) ? want : exact), 1e-5)
          << gguf::type_name(type) << " on " << be->name();
    }
  }
}

TEST_F(BackendOps, RopeWithYarn) {
  constexpr int kTokens = 4, kHeads = 3;
  constexpr int64_t kDims = 16, kHeadStride = 24, kLd = kHeads * kHeadStride;
  RopeConfig cfg;
  cfg.dims = kDims;
  cfg.base = 10000.0f;
  cfg.factor = 40.0f;
  cfg.original_context = 64;
  const std::vector<BatchToken> batch = {
      {0, 0, 0, false}, {0, 5, 0, false}, {0, 300, 1, false}, {0, 7, 2, true}};
  const std::vector<float> x = gaussian(kTokens * kLd, 4);
  std::vector<float> want = x;
  reference_->rope(cfg, want.data(), kLd, kHeads, kHeadStride, batch.data(), kTokens);
  EXPECT_NE(want, x);
  for (auto& be : backends_) {
    On<float> y(*be, x);
    be->rope(cfg, y.get(), kLd, kHeads, kHeadStride, batch.data(), kTokens);
    EXPECT_LE(rel_error(y.host(), want), on_cpu(*be) ? 1e-6 : 1e-5) << be->name();
  }
}

TEST_F(BackendOps, SiluMulAndAdd) {
  constexpr int64_t kCount = 1003;
  const std::vector<float> gate = gaussian(kCount, 5, 3.0f), up = gaussian(kCount, 6),
                           y = gaussian(kCount, 7);
  std::vector<float> want_silu = gate, want_add = y, want_add2 = y;
  reference_->silu_mul(want_silu.data(), up.data(), kCount);
  reference_->add(want_add.data(), gate.data(), nullptr, kCount);
  reference_->add(want_add2.data(), gate.data(), up.data(), kCount);
  for (int64_t i = 0; i < kCount; ++i) {  // the reference itself, against the definitions
    EXPECT_NEAR(want_silu[i], gate[i] / (1 + std::exp(-gate[i])) * up[i],
                1e-5 * (1 + std::fabs(want_silu[i])));
    EXPECT_EQ(want_add[i], y[i] + gate[i]);
    EXPECT_EQ(want_add2[i], y[i] + (gate[i] + up[i]));
  }
  for (auto& be : backends_) {
    On<float> g(*be, gate), u(*be, up), silu(*be, gate), add(*be, y), add2(*be, y);
    be->silu_mul(silu.get(), u.get(), kCount);
    be->add(add.get(), g.get(), nullptr, kCount);
    be->add(add2.get(), g.get(), u.get(), kCount);
    EXPECT_LE(rel_error(silu.host(), want_silu), 1e-6) << be->name();
    EXPECT_EQ(add.host(), want_add) << be->name();
    EXPECT_EQ(add2.host(), want_add2) << be->name();
  }
}

TEST_F(BackendOps, RouteSoftmaxAndGroupedSigmoid) {
  constexpr int kTokens = 9;
  const std::vector<float> bias = gaussian(64, 8, 0.1f);
  const RoutingConfig softmax{.n_expert = 16, .k = 3};
  const RoutingConfig sigmoid{.n_expert = 64,
                              .k = 6,
                              .n_group = 8,
                              .n_group_used = 4,
                              .gating = Gating::kSigmoid,
                              .normalize = true,
                              .scale = 2.5f,
                              .bias = bias.data()};
  for (const RoutingConfig& cfg : {softmax, sigmoid}) {
    const std::vector<float> logits = gaussian(static_cast<size_t>(kTokens * cfg.n_expert), 9);
    std::vector<int32_t> want_ids(kTokens * cfg.k);
    std::vector<float> want_w(want_ids.size());
    reference_->route(cfg, logits.data(), kTokens, want_ids.data(), want_w.data());
    for (auto& be : backends_) {
      RoutingConfig mine = cfg;
      const Vector placed_bias =
          cfg.bias ? be->place(Vector{cfg.bias, cfg.n_expert}, "exp_probs_b").value() : Vector{};
      mine.bias = placed_bias.data;
      On<float> l(*be, logits), w(*be, want_w.size());
      On<int32_t> ids(*be, want_ids.size());
      be->route(mine, l.get(), kTokens, ids.get(), w.get());
      EXPECT_EQ(ids.host(), want_ids) << be->name();
      EXPECT_LE(rel_error(w.host(), want_w), 1e-6) << be->name();
    }
  }
}

// y[t] = sum_j w[t,j] * down_e(silu(gate_e x[t]) * up_e x[t]) from single-row reference products.
std::vector<float> moe_definition(const ExpertTensors& e, const std::vector<float>& x, int n,
                                  const std::vector<int32_t>& ids, const std::vector<float>& weights, int k) {
  const int64_t d = e.gate.cols, ff = e.gate.rows;
  std::vector<float> y(n * d, 0.0f), g(ff), u(ff), o(d);
  for (int t = 0; t < n; ++t) {
    for (int j = 0; j < k; ++j) {
      const int32_t ex = ids[t * k + j];
      cpu::matmul_reference(cpu::to_matrix(e.gate, ex), x.data() + t * d, d, 1, g.data(), ff);
      cpu::matmul_reference(cpu::to_matrix(e.up, ex), x.data() + t * d, d, 1, u.data(), ff);
      for (int64_t i = 0; i < ff; ++i) g[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
      cpu::matmul_reference(cpu::to_matrix(e.down, ex), g.data(), ff, 1, o.data(), d);
      for (int64_t i = 0; i < d; ++i) y[t * d + i] += weights[t * k + j] * o[i];
    }
  }
  return y;
}

TEST_F(BackendOps, MoePreparedAndNot) {
  constexpr int64_t kDim = 512, kFf = 256, kExperts = 8;
  constexpr int kTokens = 21, kK = 3;
  for (const auto& [type, down_type] : {std::pair{GgmlType::Q4_K, GgmlType::Q6_K},
                                        {GgmlType::Q8_0, GgmlType::Q8_0},
                                        {GgmlType::F16, GgmlType::F16}}) {
    const auto gate = cpu::testing::random_weights(type, kFf * kExperts, kDim, 21);
    const auto up = cpu::testing::random_weights(type, kFf * kExperts, kDim, 22);
    const auto down = cpu::testing::random_weights(down_type, kDim * kExperts, kFf, 23);
    ExpertTensors e;
    e.gate = make_weight(type, kDim, kFf, gate.data(), kExperts);
    e.up = make_weight(type, kDim, kFf, up.data(), kExperts);
    e.down = make_weight(down_type, kFf, kDim, down.data(), kExperts);
    const std::vector<float> x = gaussian(kTokens * kDim, 24);
    std::vector<int32_t> ids(kTokens * kK);
    Rng rng(25);
    for (int t = 0; t < kTokens; ++t) {
      for (int j = 0; j < kK; ++j)
        ids[t * kK + j] = static_cast<int32_t>((t * 5 + j * 3 + rng.next() % 2) % kExperts);
    }
    const std::vector<float> weights = gaussian(ids.size(), 26, 0.5f);
    std::vector<float> want(kTokens * kDim);
    reference_->moe(e, x.data(), kTokens, ids.data(), weights.data(), kK, want.data(), nullptr);
    const std::vector<float> exact = moe_definition(e, x, kTokens, ids, weights, kK);
    EXPECT_LE(rel_error(want, exact), 2e-2) << gguf::type_name(type);  // int8 activations, twice
    for (auto& be : backends_) {
      for (bool prepare : {false, true}) {
        ExpertTensors mine;
        mine.gate = be->place(e.gate, "ffn_gate_exps").value();
        mine.up = be->place(e.up, "ffn_up_exps").value();
        mine.down = be->place(e.down, "ffn_down_exps").value();
        ExpertTensors* layers[] = {&mine};
        if (prepare) be->prepare_experts(layers);
        On<float> xd(*be, x), wd(*be, weights), y(*be, want.size());
        On<int32_t> idd(*be, ids);
        MoeDownInputs down_inputs;
        be->moe(mine, xd.get(), kTokens, idd.get(), wd.get(), kK, y.get(), &down_inputs);
        EXPECT_LE(rel_error(y.host(), on_cpu(*be) ? want : exact), on_cpu(*be) ? 2e-3 : 1e-4)
            << gguf::type_name(type) << " on " << be->name() << (prepare ? ", prepared" : "");
        EXPECT_NE(down_inputs.h, nullptr);
        EXPECT_NE(down_inputs.order, nullptr);
      }
    }
  }
}

// A batch of two sequences: a prefill chunk of one (positions 20..31 after a cached prefix) and one decode
// token of the other at position 300 (more than one block of the CUDA kernel's positions), written to the
// cache by kv_store and attended in every form.
TEST_F(BackendOps, KvStoreAndMlaAttendEveryForm) {
  const MlaShape s{.n_head = 4,
                   .nope = 16,
                   .rope = 8,
                   .kv_lora = 32,
                   .v = 16,
                   .width = 40,
                   .scale = 0.2f,
                   .key_block = 16};
  const int64_t kvl = s.kv_lora;
  constexpr int kDecodePos = 300, kPageTokens = 8, kPagesPerSeq = 40;
  std::vector<std::vector<float>> uk_data, uv_data;
  LatentProjections p;
  p.uk_transposed = true;  // the combined layout: W_UK as nope rows of kv_lora
  for (int64_t h = 0; h < s.n_head; ++h) {
    uk_data.push_back(gaussian(static_cast<size_t>(s.nope * kvl), 30 + h, 0.2f));
    uv_data.push_back(gaussian(static_cast<size_t>(s.v * kvl), 40 + h, 0.2f));
    p.uk.push_back(make_weight(GgmlType::F32, kvl, s.nope, uk_data.back().data()));
    p.uv.push_back(make_weight(GgmlType::F32, kvl, s.v, uv_data.back().data()));
  }
  std::vector<BatchToken> batch;
  for (int pos = 20; pos < 32; ++pos) batch.push_back({0, pos, 0, true});
  batch.push_back({0, kDecodePos, 1, true});
  const int n = static_cast<int>(batch.size());
  const std::vector<float> q = gaussian(n * s.q_stride(), 50), rows = gaussian(n * s.width, 51);
  const std::vector<float> prefix = gaussian(kDecodePos * s.width, 52);
  std::vector<int32_t> table0, table1;
  for (int i = 0; i < kPagesPerSeq; ++i) {
    table0.push_back(i);
    table1.push_back(2 * kPagesPerSeq - 1 - i);  // out of order
  }

  for (KvType type : {KvType::kF32, KvType::kBF16}) {
    // Each backend writes into a cache of its own, in its memory, filled alike beforehand.
    auto attend = [&](Backend& be, const LatentProjections& placed, AttentionMode mode,
                      std::vector<float>* latents) {
      KvPages pages(1, static_cast<int>(s.width), kPageTokens, 2 * kPagesPerSeq, type, &be);
      KvView kv{&pages, {table0, table1}};
      for (int pos = 0; pos < 20; ++pos) kv.store(0, 0, pos, prefix.data() + pos * s.width);
      for (int pos = 0; pos < kDecodePos; ++pos) kv.store(0, 1, pos, prefix.data() + pos * s.width);
      On<float> rd(be, rows), qd(be, q), out(be, n * s.out_stride()), lat(be, n * s.n_head * kvl);
      be.kv_store(kv, 0, batch.data(), n, rd.get(), s.width);
      be.mla_attend(s, placed, qd.get(), batch.data(), n, kv, 0, mode, out.get(),
                    latents == nullptr ? nullptr : lat.get());
      if (latents != nullptr) *latents = lat.host();
      return out.host();
    };
    const std::vector<float> want = attend(*reference_, p, AttentionMode::kExpanded, nullptr);
    std::vector<float> want_latents;
    EXPECT_LE(rel_error(attend(*reference_, p, AttentionMode::kAbsorbed, &want_latents), want), 1e-5);
    for (auto& be : backends_) {
      LatentProjections mine;
      mine.uk_transposed = p.uk_transposed;
      for (const Weight& w : p.uk) mine.uk.push_back(be->place(w, "attn_k_b").value());
      for (const Weight& w : p.uv) mine.uv.push_back(be->place(w, "attn_v_b").value());
      LatentProjections* layers[] = {&mine};
      be->prepare_latent(layers);
      const double bound = on_cpu(*be) ? 1e-5 : 1e-4;
      for (AttentionMode mode : {AttentionMode::kAuto, AttentionMode::kAbsorbed, AttentionMode::kExpanded}) {
        std::vector<float> latents;
        const bool absorbed = mode == AttentionMode::kAbsorbed;
        const std::vector<float> got = attend(*be, mine, mode, absorbed ? &latents : nullptr);
        EXPECT_LE(rel_error(got, want), bound)
            << be->name() << ", " << attention_mode_name(mode) << ", " << kv_type_name(type);
        if (absorbed) {
          EXPECT_LE(rel_error(latents, want_latents), bound) << be->name();
        }
      }
    }
  }
}

}  // namespace
}  // namespace onecard::backend
