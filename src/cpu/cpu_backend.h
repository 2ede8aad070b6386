// The CPU as a backend: the ops of backend.h on the kernel table of one ISA, split over a thread pool.
// Experts in formats the table has a packer for are repacked at load, and combined files' W_UK is turned
// into rows of the latent; both copies belong to this backend.
#pragma once

#include <deque>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "base/thread_pool.h"
#include "cpu/isa.h"
#include "cpu/mla_attention.h"
#include "cpu/moe.h"
#include "cpu/ops.h"
#include "cpu/routing.h"

namespace onecard::cpu {

struct CpuBackendOptions {
  // The kernels matmul and moe run with (at most active_isa()); the element-wise ops and the attention take
  // the best table's, as everywhere (kernels.h).
  Isa isa = active_isa();
  // Repack experts at load (packed.h) when the table has a packer for their format and they fit in the
  // memory available; otherwise the kernels read the mapped file's layout.
  bool repack_experts = true;
};

class CpuBackend final : public backend::Backend {
 public:
  explicit CpuBackend(std::unique_ptr<ThreadPool> pool, const CpuBackendOptions& options = {});
  ~CpuBackend() override;

  ThreadPool& pool() { return *pool_; }
  Isa isa() const { return isa_; }
  uint64_t repacked_bytes() const;

  backend::Device device() const override { return backend::kCpu; }
  std::string name() const override;
  void* alloc(size_t bytes) override;
  void release(void* p) override;
  void zero(void* p, size_t bytes) override;
  void upload(void* dst, const void* host, size_t bytes) override;
  void download(void* host, const void* src, size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;
  Result<backend::Weight> place(const backend::Weight& host, std::string_view name) override;
  Result<backend::Vector> place(const backend::Vector& host, std::string_view name) override;
  void prepare_experts(std::span<backend::ExpertTensors* const> layers) override;
  void prepare_latent(std::span<backend::LatentProjections* const> layers) override;
  uint64_t prepared_bytes() const override;

  void embed(const backend::Weight& table, const BatchToken* batch, int n, float* y, int64_t ldy) override;
  void rms_norm(const float* x, int64_t ldx, const backend::Vector& w, float eps, int n, float* y,
                int64_t ldy) override;
  void matmul(const backend::Weight& w, const float* x, int64_t ldx, int n, float* y, int64_t ldy) override;
  void rope(const backend::RopeConfig& cfg, float* x, int64_t ldx, int n_heads, int64_t head_stride,
            const BatchToken* batch, int n) override;
  void silu_mul(float* gate, const float* up, int64_t count) override;
  void add(float* y, const float* a, const float* b, int64_t count) override;
  void route(const backend::RoutingConfig& cfg, const float* logits, int n, int32_t* ids,
             float* weights) override;
  void moe(const backend::ExpertTensors& e, const float* x, int n, const int32_t* ids, const float* weights,
           int k, float* y, backend::MoeDownInputs* down_inputs) override;
  void kv_store(const KvView& kv, int layer, const BatchToken* batch, int n, const float* rows,
                int64_t ld) override;
  void mla_attend(const MlaShape& s, const backend::LatentProjections& p, const float* q,
                  const BatchToken* batch, int n, const KvView& kv, int layer, backend::AttentionMode mode,
                  float* out, float* latents) override;

 private:
  // Consecutive batch tokens attended in one form: an expanded run is one sequence's, an absorbed run may
  // hold several sequences' tokens.
  struct Run {
    int first, count;
    bool expanded;
  };
  // Attention work: heads [h0, h0 + heads) of a run, over all its positions (part < 0) or over [p0, p1)
  // into partial `part` with the latent queries of `merge`; each merge combines a head group's n_parts
  // partials from first_part on.
  struct HeadTask {
    int run, h0, heads;
    int part = -1, merge = -1;
    int64_t p0 = 0, p1 = 0;
  };
  struct HeadMerge {
    int run, h0, heads, first_part, n_parts;
  };
  void plan_runs(const MlaShape& s, const BatchToken* batch, int n, backend::AttentionMode mode);
  void plan_attention_tasks(const MlaShape& s, const BatchToken* batch, int64_t page_tokens);
  ExpertWeights expert_view(const backend::ExpertTensors& e) const;
  const Rope& rope_table(const backend::RopeConfig& cfg);

  std::unique_ptr<ThreadPool> pool_;
  Isa isa_;
  bool repack_;
  std::deque<ExpertWeights> experts_;  // what prepared points at: addresses stay put as layers are added
  std::vector<PackedBuffer> packed_;
  std::deque<LatentWeights> latent_;
  std::vector<std::vector<uint8_t>> uk_copies_;
  std::vector<std::pair<backend::RopeConfig, Rope>> ropes_;
  MoeScratch moe_;
  std::vector<RoutingScratch> routing_;  // per thread
  std::vector<MlaScratch> mla_;          // per thread
  std::vector<Run> runs_;
  std::vector<HeadTask> tasks_;
  std::vector<HeadMerge> merges_;
  std::vector<std::vector<float>> split_queries_;  // by HeadMerge
  std::vector<LatentPartial> parts_;               // by HeadTask::part
};

}  // namespace onecard::cpu
