#include "cpu/moe.h"

#include <algorithm>

#include "cpu/matmul.h"
#include "cpu/moe_int.h"
#include "cpu/ops.h"
#include "cpu/vec.h"

namespace onecard::cpu {
namespace {

// Float and dequantized formats: gather the inputs per pair and run the generic row kernels per block.
void moe_experts_float(const ExpertWeights& w, const float* x, int64_t n_tokens, int k, ThreadPool& pool,
                       MoeScratch& s, Isa isa) {
  const int64_t d = w.gate.cols, ff = w.gate.rows, n_pairs = n_tokens * k;
  s.x.resize(static_cast<size_t>(n_pairs * d));
  s.h.resize(static_cast<size_t>(n_pairs * ff));
  s.u.resize(static_cast<size_t>(n_pairs * ff));
  s.out.resize(static_cast<size_t>(n_pairs * d));
  for (int64_t i = 0; i < n_pairs; ++i) {
    const int64_t t = s.order[i] / k;
    std::copy(x + t * d, x + (t + 1) * d, s.x.data() + i * d);
  }
  constexpr int64_t kRows = 32;
  const int64_t ff_blocks = (ff + kRows - 1) / kRows, d_blocks = (d + kRows - 1) / kRows;
  const auto n_active = static_cast<int64_t>(s.active.size());
  pool.parallel_for(n_active * ff_blocks, [&](int64_t task, int) {
    const int32_t e = s.active[task / ff_blocks];
    const int64_t r0 = (task % ff_blocks) * kRows, m = s.offsets[e + 1] - s.offsets[e];
    const int64_t nr = std::min(kRows, ff - r0);
    const float* xe = s.x.data() + s.offsets[e] * d;
    Matrix g = w.expert(w.gate, e), u = w.expert(w.up, e);
    g.data = g.row(r0);
    u.data = u.row(r0);
    g.rows = u.rows = nr;
    float* he = s.h.data() + s.offsets[e] * ff + r0;
    float* ue = s.u.data() + s.offsets[e] * ff + r0;
    matmul_isa(g, xe, d, m, he, ff, nullptr, isa);
    matmul_isa(u, xe, d, m, ue, ff, nullptr, isa);
    for (int64_t i = 0; i < m; ++i) silu_mul(he + i * ff, ue + i * ff, nr);
  });
  pool.parallel_for(n_active * d_blocks, [&](int64_t task, int) {
    const int32_t e = s.active[task / d_blocks];
    const int64_t r0 = (task % d_blocks) * kRows, m = s.offsets[e + 1] - s.offsets[e];
    Matrix dn = w.expert(w.down, e);
    dn.data = dn.row(r0);
    dn.rows = std::min(kRows, d - r0);
    matmul_isa(dn, s.h.data() + s.offsets[e] * ff, ff, m, s.out.data() + s.offsets[e] * d + r0, d, nullptr,
               isa);
  });
}

}  // namespace

void moe_forward_isa(const ExpertWeights& w, const float* x, int64_t n_tokens, const int32_t* ids,
                     const float* weights, int k, float* y, ThreadPool& pool, MoeScratch& s, Isa isa) {
  const int64_t d = w.gate.cols, E = w.n_expert;
  const int64_t n_pairs = n_tokens * k;

  // Group the (token, slot) pairs by expert: order[offsets[e] .. offsets[e+1]) are expert e's pairs.
  s.counts.assign(static_cast<size_t>(E), 0);
  for (int64_t p = 0; p < n_pairs; ++p) ++s.counts[ids[p]];
  s.offsets.assign(static_cast<size_t>(E) + 1, 0);
  s.active.clear();
  for (int64_t e = 0; e < E; ++e) {
    s.offsets[e + 1] = s.offsets[e] + s.counts[e];
    if (s.counts[e] > 0) s.active.push_back(static_cast<int32_t>(e));
  }
  // Busy experts first, so the longest tasks start early and the tail of the task list balances.
  std::sort(s.active.begin(), s.active.end(), [&](int32_t a, int32_t b) {
    return s.counts[a] != s.counts[b] ? s.counts[a] > s.counts[b] : a < b;  // ties by index: deterministic
  });
  s.order.resize(static_cast<size_t>(n_pairs));
  s.slot_of.resize(static_cast<size_t>(n_pairs));
  std::fill(s.counts.begin(), s.counts.end(), 0);  // reused as the fill cursor of each expert
  for (int64_t p = 0; p < n_pairs; ++p) {
    const int32_t i = s.offsets[ids[p]] + s.counts[ids[p]]++;
    s.order[i] = static_cast<int32_t>(p);
    s.slot_of[p] = i;
  }

  const IntFormat* gate_f = int_format(w.gate.type);
  const IntFormat* down_f = int_format(w.down.type);
  if (gate_f != nullptr && down_f != nullptr && w.up.type == w.gate.type) {
    moe_experts_int(*gate_f, *down_f, w, x, n_tokens, k, pool, s, kernels(isa));
  } else {
    moe_experts_float(w, x, n_tokens, k, pool, s, isa);
  }

  // Weighted sum in a fixed order per token, so results do not depend on the thread count.
  pool.parallel_for(n_tokens, [&](int64_t t, int) {
    float* yt = y + t * d;
    std::fill(yt, yt + d, 0.0f);
    for (int j = 0; j < k; ++j) {
      const int64_t p = t * k + j;
      axpy_f32(weights[p], s.out.data() + static_cast<int64_t>(s.slot_of[p]) * d, yt, d);
    }
  });
}

void moe_forward(const ExpertWeights& w, const float* x, int64_t n_tokens, const int32_t* ids,
                 const float* weights, int k, float* y, ThreadPool& pool, MoeScratch& scratch) {
  moe_forward_isa(w, x, n_tokens, ids, weights, k, y, pool, scratch, active_isa());
}

}  // namespace onecard::cpu
