// The forward pass with tensors on a GPU, against the reference logits: hybrid (the routed experts and the
// embedding on the CPU, everything else on the card, as the default plan puts them) and everything on the
// card, for every golden model, both cache types and prefill in chunks; on a CUDA card where one is found,
// and everywhere on a stand-in: the CPU's kernels in the role of a GPU, with memory of its own, which
// checks that every activation, weight and cache row crosses between the devices where it must (a missed
// copy leaves the other side's buffer stale or zero).
#include <gtest/gtest.h>

#include <filesystem>
#include <ostream>

#include "common/golden_logits.h"
#include "common/test_paths.h"
#include "cpu/cpu_backend.h"
#include "model/deepseek2.h"
#ifdef ONECARD_HAVE_CUDA
#include "cuda/backend.h"
#endif

namespace onecard::model {
namespace {

using test::Agreement;
using test::compare_logits;
using test::read_all;

enum class Placement { kHybrid, kGpu };

// The CPU backend's ops behind a GPU's device name, its memory apart from the host's: weights are copied by
// place(), activations and the KV cache live in its own allocations.
class StandInGpu final : public backend::Backend {
 public:
  StandInGpu() : cpu_(std::make_unique<ThreadPool>(2)) {}
  ~StandInGpu() override {
    for (void* p : owned_) cpu_.release(p);
  }
  backend::Device device() const override { return {backend::DeviceKind::kCuda, 0}; }
  std::string name() const override { return "cuda0 (stand-in: the CPU's kernels)"; }
  void* alloc(size_t bytes) override { return cpu_.alloc(bytes); }
  void release(void* p) override { cpu_.release(p); }
  void zero(void* p, size_t bytes) override { cpu_.zero(p, bytes); }
  void upload(void* dst, const void* host, size_t bytes) override { cpu_.upload(dst, host, bytes); }
  void download(void* host, const void* src, size_t bytes) override { cpu_.download(host, src, bytes); }
  void copy(void* dst, const void* src, size_t bytes) override { cpu_.copy(dst, src, bytes); }
  Result<backend::Weight> place(const backend::Weight& host, std::string_view) override {
    backend::Weight w = host;
    w.data =
        static_cast<const uint8_t*>(own(host.data, host.matrix_bytes() * static_cast<size_t>(host.n_mat)));
    w.device = device();
    return w;
  }
  Result<backend::Vector> place(const backend::Vector& host, std::string_view) override {
    return backend::Vector{static_cast<const float*>(own(host.data, static_cast<size_t>(host.n) * 4)), host.n,
                           device()};
  }
  void prepare_experts(std::span<backend::ExpertTensors* const> l) override { cpu_.prepare_experts(l); }
  void prepare_latent(std::span<backend::LatentProjections* const> l) override { cpu_.prepare_latent(l); }
  uint64_t prepared_bytes() const override { return cpu_.prepared_bytes(); }
  void embed(const backend::Weight& t, const BatchToken* b, int n, float* y, int64_t ldy) override {
    cpu_.embed(t, b, n, y, ldy);
  }
  void rms_norm(const float* x, int64_t ldx, const backend::Vector& w, float eps, int n, float* y,
                int64_t ldy) override {
    cpu_.rms_norm(x, ldx, w, eps, n, y, ldy);
  }
  void matmul(const backend::Weight& w, const float* x, int64_t ldx, int n, float* y, int64_t ldy) override {
    cpu_.matmul(w, x, ldx, n, y, ldy);
  }
  void rope(const backend::RopeConfig& c, float* x, int64_t ldx, int heads, int64_t stride,
            const BatchToken* b, int n) override {
    cpu_.rope(c, x, ldx, heads, stride, b, n);
  }
  void silu_mul(float* g, const float* u, int64_t count) override { cpu_.silu_mul(g, u, count); }
  void add(float* y, const float* a, const float* b, int64_t count) override { cpu_.add(y, a, b, count); }
  void route(const backend::RoutingConfig& c, const float* l, int n, int32_t* ids, float* w) override {
    cpu_.route(c, l, n, ids, w);
  }
  void moe(const backend::ExpertTensors& e, const float* x, int n, const int32_t* ids, const float* w, int k,
           float* y, backend::MoeDownInputs* down) override {
    cpu_.moe(e, x, n, ids, w, k, y, down);
  }
  void kv_store(const backend::KvView& kv, int layer, const BatchToken* b, int n, const float* rows,
                int64_t ld) override {
    cpu_.kv_store(kv, layer, b, n, rows, ld);
  }
  void mla_attend(const backend::MlaShape& s, const backend::LatentProjections& p, const float* q,
                  const BatchToken* b, int n, const backend::KvView& kv, int layer,
                  backend::AttentionMode mode, float* out, float* latents) override {
    cpu_.mla_attend(s, p, q, b, n, kv, layer, mode, out, latents);
  }

 private:
  void* own(const void* src, size_t bytes) {
    void* p = cpu_.alloc(bytes);
    cpu_.upload(p, src, bytes);
    owned_.push_back(p);
    return p;
  }
  cpu::CpuBackend cpu_;
  std::vector<void*> owned_;
};

std::string gpu_missing() {
#ifdef ONECARD_HAVE_CUDA
  auto gpu = cuda::make_backend(0);
  return gpu.ok() ? std::string() : gpu.error().message();
#else
  return "built without CUDA";
#endif
}

backend::Device device_for(Placement p, std::string_view tensor) {
  const backend::Device gpu{backend::DeviceKind::kCuda, 0};
  if (p == Placement::kGpu) return gpu;
  const bool cpu = tensor.find("_exps") != std::string_view::npos || tensor == "token_embd.weight";
  return cpu ? backend::kCpu : gpu;
}

struct Case {
  std::string model;
  double tolerance;  // with an f32 KV cache: the forward pass's bound for the weight type
};
std::ostream& operator<<(std::ostream& os, const Case& c) {
  return os << c.model;
}
std::ostream& operator<<(std::ostream& os, Placement p) {
  return os << (p == Placement::kGpu ? "gpu" : "hybrid");
}

// Runs the golden model's prompt with the placement, on a CUDA card or on the stand-in.
void check_golden(const Case& c, Placement placement, KvType kv, int chunk, bool stand_in) {
  const std::string base = test::golden_dir() + "/models/" + c.model;
  // The GPU machine gets the golden models that fit what is carried there (scripts/gpu-pack.sh).
  if (!std::filesystem::exists(base + ".gguf")) GTEST_SKIP() << base << ".gguf is not here";
  const auto tokens = read_all<int32_t>(base + ".tokens.i32");
  const auto want = read_all<float>(base + ".logits.f32");
  LoadOptions o;
  o.n_ctx = static_cast<int>(tokens.size());
  o.n_batch = chunk > 0 ? chunk : o.n_ctx;
  o.n_threads = 2;
  const Placement p = placement;
  o.device_of = [p](std::string_view tensor) { return device_for(p, tensor); };
  if (stand_in) {
    o.make_gpu = [](backend::Device) -> Result<std::unique_ptr<backend::Backend>> {
      return std::unique_ptr<backend::Backend>(std::make_unique<StandInGpu>());
    };
  }
  auto m = DeepSeek2::load(base + ".gguf", o);
  ASSERT_TRUE(m.ok()) << m.error().message();
  ASSERT_NE(m.value()->kv_backend(), nullptr);
  const KvCache cache(m.value()->hparams(), 1, o.n_ctx, kv, 16, m.value()->kv_backend());
  std::vector<BatchToken> batch;
  for (size_t i = 0; i < tokens.size(); ++i) batch.push_back({tokens[i], static_cast<int32_t>(i), 0, true});
  std::vector<float> logits;
  auto st = m.value()->forward(batch, cache, logits);
  ASSERT_TRUE(st.ok()) << st.error().message();
  const Agreement a = compare_logits(logits, want, want.size() / tokens.size());
  if (kv == KvType::kF32) {
    EXPECT_LE(a.max_rel, c.tolerance);
    EXPECT_EQ(a.top1, 1.0);
  } else {
    EXPECT_LE(a.max_rel, 1e-2);
    EXPECT_GE(a.top1, 0.98);
  }
}

class GoldenOnGpu : public testing::TestWithParam<std::tuple<Case, Placement, KvType, int>> {};

TEST_P(GoldenOnGpu, MatchesTheReference) {
  if (const std::string why = gpu_missing(); !why.empty()) GTEST_SKIP() << "no CUDA device: " << why;
  const auto& [c, placement, kv, chunk] = GetParam();
  check_golden(c, placement, kv, chunk, false);
}

TEST_P(GoldenOnGpu, MatchesTheReferenceOnAStandIn) {
  const auto& [c, placement, kv, chunk] = GetParam();
  check_golden(c, placement, kv, chunk, true);
}

INSTANTIATE_TEST_SUITE_P(
    Golden, GoldenOnGpu,
    testing::Combine(testing::Values(Case{"tiny-v3-f32", 1e-4}, Case{"tiny-v3-bf16", 1e-3},
                                     Case{"tiny-v3-f16-kbvb", 1e-3}, Case{"tiny-v2lite-f16", 1e-3}),
                     testing::Values(Placement::kHybrid, Placement::kGpu),
                     testing::Values(KvType::kF32, KvType::kBF16), testing::Values(7, 0)),
    [](const auto& param_info) {
      std::string name = std::get<0>(param_info.param).model +
                         (std::get<1>(param_info.param) == Placement::kGpu ? "_gpu" : "_hybrid") + "_" +
                         std::string(kv_type_name(std::get<2>(param_info.param))) + "_chunk" +
                         std::to_string(std::get<3>(param_info.param));
      for (char& ch : name) ch = ch == '-' ? '_' : ch;
      return name;
    });

// Without a card, or without CUDA in the build, a placement on one is refused at load with the reason.
TEST(GpuPlacement, RefusedClearlyWithoutACard) {
  if (gpu_missing().empty()) GTEST_SKIP() << "a CUDA device is present";
  LoadOptions o;
  o.n_ctx = 16;
  o.device_of = [](std::string_view tensor) { return device_for(Placement::kHybrid, tensor); };
  auto m = DeepSeek2::load(test::golden_dir() + "/models/tiny-v3-f32.gguf", o);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message().find("cuda0"), std::string::npos) << m.error().message();
}

// Tensors used together on different devices are refused, naming both.
TEST(GpuPlacement, SplitPhaseRefused) {
  LoadOptions o;
  o.n_ctx = 16;
  o.device_of = [](std::string_view tensor) {
    return tensor == "blk.0.attn_output.weight" ? backend::Device{backend::DeviceKind::kCuda, 0}
                                                : backend::kCpu;
  };
  auto m = DeepSeek2::load(test::golden_dir() + "/models/tiny-v3-f32.gguf", o);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message().find("blk.0.attn_output.weight"), std::string::npos) << m.error().message();
  EXPECT_NE(m.error().message().find("must share a device"), std::string::npos) << m.error().message();
}

}  // namespace
}  // namespace onecard::model
