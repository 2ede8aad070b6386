#include "cpu/cpu_backend.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "base/cpu_features.h"
#include "base/format.h"
#include "base/half.h"
#include "base/log.h"
#include "base/progress.h"
#include "cpu/kernels.h"
#include "cpu/matmul.h"
#include "quant/dequantize.h"

namespace onecard::cpu {

CpuBackend::CpuBackend(std::unique_ptr<ThreadPool> pool, const CpuBackendOptions& options)
    : pool_(std::move(pool)),
      isa_(options.isa),
      repack_(options.repack_experts),
      mla_(static_cast<size_t>(pool_->size())) {}

CpuBackend::~CpuBackend() = default;

std::string CpuBackend::name() const {
  return fmt::format("cpu ({}, {} threads)", isa_name(isa_), pool_->size());
}

void* CpuBackend::alloc(size_t bytes) {
  // 64-byte lines for the vector kernels; aligned_alloc wants a multiple of the alignment.
  return std::aligned_alloc(64, (std::max<size_t>(bytes, 1) + 63) / 64 * 64);
}

void CpuBackend::release(void* p) {
  std::free(p);
}

void CpuBackend::zero(void* p, size_t bytes) {
  std::memset(p, 0, bytes);
}

void CpuBackend::upload(void* dst, const void* host, size_t bytes) {
  std::memcpy(dst, host, bytes);
}

void CpuBackend::download(void* host, const void* src, size_t bytes) {
  std::memcpy(host, src, bytes);
}

void CpuBackend::copy(void* dst, const void* src, size_t bytes) {
  std::memmove(dst, src, bytes);
}

Result<backend::Weight> CpuBackend::place(const backend::Weight& host, std::string_view) {
  return host;
}

Result<backend::Vector> CpuBackend::place(const backend::Vector& host, std::string_view) {
  return host;
}

ExpertWeights CpuBackend::expert_view(const backend::ExpertTensors& e) const {
  ExpertWeights w;
  w.gate = to_matrix(e.gate);
  w.up = to_matrix(e.up);
  w.down = to_matrix(e.down);
  w.n_expert = e.gate.n_mat;
  return w;
}

void CpuBackend::prepare_experts(std::span<backend::ExpertTensors* const> layers) {
  for (backend::ExpertTensors* e : layers) {
    e->prepared = &experts_.emplace_back(expert_view(*e));
  }
  if (!repack_) return;
  // Only the formats the chosen kernels have a packer for are copied (none on ISAs without one).
  const KernelTable& table = kernels(isa_);
  const size_t first = experts_.size() - layers.size();
  uint64_t bytes = 0;
  for (size_t i = first; i < experts_.size(); ++i) bytes += packed_experts_bytes(experts_[i], table);
  if (bytes == 0) return;
  // The copy must not push the mapped file out of memory: a model larger than RAM keeps streaming from it.
  const uint64_t available = system_info().memory_available;
  if (bytes > available / 10 * 9) {
    log::warn(
        "experts ({}) not repacked for {}: only {} of memory available; the kernels read them in the "
        "file's layout (slower prefill)",
        human_bytes(bytes), isa_name(isa_), human_bytes(available));
    return;
  }
  Progress progress("repacking experts", bytes, bytes >= (uint64_t{1} << 30));
  for (size_t i = first; i < experts_.size(); ++i) {
    if (packed_experts_bytes(experts_[i], table) == 0) continue;
    PackedBuffer packed = pack_experts(experts_[i], *pool_, table);
    if (packed.data == nullptr) {
      // The layers packed so far keep their copies; the rest read the file.
      log::warn("out of memory after repacking {} of experts; the remaining layers read the file's layout",
                human_bytes(repacked_bytes()));
      break;
    }
    progress.advance(packed.bytes);
    packed_.push_back(std::move(packed));
  }
  progress.finish();
  log::info("Q2_K/Q4_K/Q6_K experts repacked for {}: {}", isa_name(isa_), human_bytes(repacked_bytes()));
}

void CpuBackend::prepare_latent(std::span<backend::LatentProjections* const> layers) {
  uint64_t bytes = 0;
  for (backend::LatentProjections* p : layers) {
    LatentWeights& l = latent_.emplace_back(latent_weights(*p));
    p->prepared = &l;
    if (!l.uk_transposed || l.uk.empty()) continue;
    const Matrix& first = l.uk[0];
    const bool wide = first.type == gguf::GgmlType::F32 || first.type == gguf::GgmlType::BF16;
    const gguf::GgmlType type = wide ? gguf::GgmlType::F32 : gguf::GgmlType::F16;
    const size_t elem = wide ? 4 : 2, per_head = static_cast<size_t>(first.rows * first.cols) * elem;
    const quant::DequantizeFn dequantize = quant::dequantize_fn(first.type);
    std::vector<uint8_t>& copy = uk_copies_.emplace_back(per_head * l.uk.size());
    l.uk_rows.resize(l.uk.size());
    pool_->parallel_for(static_cast<int64_t>(l.uk.size()), [&](int64_t h, int) {
      const Matrix& w = l.uk[h];
      std::vector<float> row(static_cast<size_t>(w.cols));
      uint8_t* out = copy.data() + static_cast<size_t>(h) * per_head;
      for (int64_t r = 0; r < w.rows; ++r) {
        dequantize(w.row(r), row.data(), w.cols);
        for (int64_t c = 0; c < w.cols; ++c) {
          const size_t at = static_cast<size_t>(c * w.rows + r);
          if (wide) {
            std::memcpy(out + at * 4, &row[c], 4);
          } else {
            const uint16_t half = fp32_to_fp16(row[c]);
            std::memcpy(out + at * 2, &half, 2);
          }
        }
      }
      l.uk_rows[h] = make_matrix(type, w.rows, w.cols, out);
    });
    bytes += copy.size();
  }
  if (bytes > 0) log::info("W_UK turned into rows of the latent for decode: {}", human_bytes(bytes));
}

uint64_t CpuBackend::repacked_bytes() const {
  uint64_t bytes = 0;
  for (const PackedBuffer& b : packed_) bytes += b.bytes;
  return bytes;
}

uint64_t CpuBackend::prepared_bytes() const {
  uint64_t bytes = repacked_bytes();
  for (const auto& c : uk_copies_) bytes += c.size();
  return bytes;
}

void CpuBackend::embed(const backend::Weight& table, const BatchToken* batch, int n, float* y, int64_t ldy) {
  const quant::DequantizeFn dequantize = quant::dequantize_fn(table.type);
  for (int t = 0; t < n; ++t) dequantize(table.row(batch[t].token), y + t * ldy, table.cols);
}

void CpuBackend::rms_norm(const float* x, int64_t ldx, const backend::Vector& w, float eps, int n, float* y,
                          int64_t ldy) {
  for (int t = 0; t < n; ++t) cpu::rms_norm(x + t * ldx, w.data, y + t * ldy, w.n, eps);
}

void CpuBackend::matmul(const backend::Weight& w, const float* x, int64_t ldx, int n, float* y, int64_t ldy) {
  matmul_isa(to_matrix(w), x, ldx, n, y, ldy, pool_.get(), isa_);
}

const Rope& CpuBackend::rope_table(const backend::RopeConfig& cfg) {
  for (const auto& [c, r] : ropes_) {
    if (c == cfg) return r;
  }
  return ropes_
      .emplace_back(cfg,
                    Rope(cfg.dims, cfg.base, cfg.factor, cfg.original_context, cfg.beta_fast, cfg.beta_slow))
      .second;
}

void CpuBackend::rope(const backend::RopeConfig& cfg, float* x, int64_t ldx, int n_heads, int64_t head_stride,
                      const BatchToken* batch, int n) {
  const Rope& r = rope_table(cfg);
  for (int t = 0; t < n; ++t) r.apply(x + t * ldx, n_heads, head_stride, batch[t].pos);
}

void CpuBackend::silu_mul(float* gate, const float* up, int64_t count) {
  cpu::silu_mul(gate, up, count);
}

void CpuBackend::add(float* y, const float* a, const float* b, int64_t count) {
  if (b == nullptr) {
    for (int64_t i = 0; i < count; ++i) y[i] += a[i];
  } else {
    for (int64_t i = 0; i < count; ++i) y[i] += a[i] + b[i];
  }
}

void CpuBackend::route(const backend::RoutingConfig& cfg, const float* logits, int n, int32_t* ids,
                       float* weights) {
  const auto sized_for = [&](const RoutingScratch& s) {
    return s.scores.size() == static_cast<size_t>(cfg.n_expert) &&
           s.group_score.size() == static_cast<size_t>(cfg.n_group);
  };
  if (routing_.empty() || !sized_for(routing_[0])) {
    routing_.assign(static_cast<size_t>(pool_->size()), RoutingScratch(cfg));
  }
  const int64_t E = cfg.n_expert, k = cfg.k;
  pool_->parallel_for(n, [&](int64_t t, int thread) {
    cpu::route(cfg, logits + t * E, ids + t * k, weights + t * k, routing_[thread]);
  });
}

void CpuBackend::moe(const backend::ExpertTensors& e, const float* x, int n, const int32_t* ids,
                     const float* weights, int k, float* y, backend::MoeDownInputs* down_inputs) {
  const auto* prepared = static_cast<const ExpertWeights*>(e.prepared);
  moe_forward_isa(prepared != nullptr ? *prepared : expert_view(e), x, n, ids, weights, k, y, *pool_, moe_,
                  isa_);
  if (down_inputs != nullptr) *down_inputs = {moe_.h.data(), moe_.order.data()};
}

void CpuBackend::kv_store(const KvView& kv, int layer, const BatchToken* batch, int n, const float* rows,
                          int64_t ld) {
  for (int t = 0; t < n; ++t) kv.store(layer, batch[t].seq, batch[t].pos, rows + t * ld);
}

void CpuBackend::plan_runs(const MlaShape& s, const BatchToken* batch, int n, backend::AttentionMode mode) {
  runs_.clear();
  for (int first = 0; first < n;) {
    int count = 1;
    while (first + count < n && batch[first + count].seq == batch[first].seq) ++count;
    bool expanded = mode == backend::AttentionMode::kExpanded;
    if (mode == backend::AttentionMode::kAuto) expanded = prefer_expanded(s, batch + first, count);
    // The absorbed form takes tokens of any sequences: neighbouring absorbed runs become one, so that a
    // head's projections into and out of the latent space run once for all the sequences decoding in this
    // step.
    if (!expanded && !runs_.empty() && !runs_.back().expanded) {
      runs_.back().count += count;
    } else {
      runs_.push_back({first, count, expanded});
    }
    first += count;
  }
}

void CpuBackend::plan_attention_tasks(const MlaShape& s, const BatchToken* batch, int64_t page_tokens) {
  // The expanded form goes head by head. An absorbed task takes a group of heads, which reads the cache rows
  // it attends to once for all its heads: groups are as large as still gives every thread two tasks. A run
  // of few tokens with a long context (decode) is split over its positions instead, in chunks of at least
  // kMinChunk positions, so that each thread reads its share of the cache once with every head: the group's
  // latent queries are made once beforehand, and its parts combined afterwards (finish_absorbed). Runs of
  // many tokens are not split: a part holds count * heads * kv_lora floats.
  constexpr int64_t kMinChunk = 128, kMaxSplitTokens = 8;
  const int64_t H = s.n_head, want = 2 * static_cast<int64_t>(pool_->size());
  int64_t absorbed_runs = 0;
  for (const Run& r : runs_) absorbed_runs += r.expanded ? 0 : 1;
  const int64_t per_run = absorbed_runs == 0 ? 1 : (want + absorbed_runs - 1) / absorbed_runs;
  tasks_.clear();
  merges_.clear();
  int n_parts = 0;
  for (int i = 0; i < static_cast<int>(runs_.size()); ++i) {
    const Run& r = runs_[i];
    if (r.expanded) {
      for (int h = 0; h < H; ++h) tasks_.push_back({i, h, 1});
      continue;
    }
    int64_t longest = 0;
    for (int t = r.first; t < r.first + r.count; ++t) longest = std::max<int64_t>(longest, batch[t].pos + 1);
    int64_t chunks = 1;
    if (r.count <= kMaxSplitTokens)
      chunks = std::clamp<int64_t>(per_run, 1, std::max<int64_t>(1, longest / kMinChunk));
    const int64_t chunk_len = ((longest + chunks - 1) / chunks + page_tokens - 1) / page_tokens * page_tokens;
    chunks = (longest + chunk_len - 1) / chunk_len;
    const int64_t groups = std::clamp<int64_t>((per_run + chunks - 1) / chunks, 1, H);
    const int64_t g = (H + groups - 1) / groups;
    for (int64_t h = 0; h < H; h += g) {
      const int heads = static_cast<int>(std::min(g, H - h));
      if (chunks == 1) {
        tasks_.push_back({i, static_cast<int>(h), heads});
        continue;
      }
      const auto merge = static_cast<int>(merges_.size());
      merges_.push_back({i, static_cast<int>(h), heads, n_parts, static_cast<int>(chunks)});
      for (int64_t c = 0; c < chunks; ++c)
        tasks_.push_back(
            {i, static_cast<int>(h), heads, n_parts++, merge, c * chunk_len, (c + 1) * chunk_len});
    }
  }
}

void CpuBackend::mla_attend(const MlaShape& s, const backend::LatentProjections& p, const float* q,
                            const BatchToken* batch, int n, const KvView& kv, int layer,
                            backend::AttentionMode mode, float* out, float* latents) {
  const auto* prepared = static_cast<const LatentWeights*>(p.prepared);
  const LatentWeights unprepared = prepared != nullptr ? LatentWeights{} : latent_weights(p);
  const LatentWeights& l = prepared != nullptr ? *prepared : unprepared;
  const int64_t qs = s.q_stride(), os = s.out_stride(), kvl = s.kv_lora;
  plan_runs(s, batch, n, mode);
  plan_attention_tasks(s, batch, kv.pages->page_tokens());
  if (parts_.size() < tasks_.size()) parts_.resize(tasks_.size());
  if (split_queries_.size() < merges_.size()) split_queries_.resize(merges_.size());
  pool_->parallel_for(static_cast<int64_t>(merges_.size()), [&](int64_t i, int) {
    const HeadMerge& m = merges_[i];
    const Run& r = runs_[m.run];
    latent_queries(s, l, m.h0, m.heads, q + r.first * qs, r.count, split_queries_[i]);
  });
  pool_->parallel_for(static_cast<int64_t>(tasks_.size()), [&](int64_t i, int thread) {
    const HeadTask& task = tasks_[i];
    const Run& r = runs_[task.run];
    const float* rq = q + r.first * qs;
    float* rout = out + r.first * os;
    if (r.expanded) {
      attend_expanded(s, l, task.h0, rq, batch + r.first, r.count, kv, layer, rout, mla_[thread]);
    } else if (task.part < 0) {
      attend_absorbed(s, l, task.h0, task.heads, rq, batch + r.first, r.count, kv, layer, rout, mla_[thread],
                      latents == nullptr ? nullptr : latents + r.first * s.n_head * kvl);
    } else {
      attend_absorbed_part(s, task.heads, split_queries_[task.merge].data(), batch + r.first, r.count, kv,
                           layer, task.p0, task.p1, parts_[task.part], mla_[thread]);
    }
  });
  pool_->parallel_for(static_cast<int64_t>(merges_.size()), [&](int64_t i, int thread) {
    const HeadMerge& m = merges_[i];
    const Run& r = runs_[m.run];
    finish_absorbed(
        s, l, m.h0, m.heads, r.count, std::span<const LatentPartial>(parts_.data() + m.first_part, m.n_parts),
        out + r.first * os, mla_[thread], latents == nullptr ? nullptr : latents + r.first * s.n_head * kvl);
  });
}

}  // namespace onecard::cpu
