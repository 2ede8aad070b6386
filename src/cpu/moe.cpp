#include "cpu/moe.h"

#include <algorithm>

#include "cpu/matmul_serial.h"
#include "cpu/ops.h"
#include "cpu/vec.h"

namespace onecard::cpu {

void moe_forward(const ExpertWeights& w, const float* x, int64_t n_tokens, const int32_t* ids,
                 const float* weights, int k, float* y, ThreadPool& pool, MoeScratch& s) {
  const int64_t d = w.gate.cols, ff = w.gate.rows, E = w.n_expert;
  const int64_t n_pairs = n_tokens * k;

  // Group the (token, slot) pairs by expert: order[offsets[e] .. offsets[e+1]) are expert e's pairs.
  s.counts.assign(static_cast<size_t>(E), 0);
  for (int64_t p = 0; p < n_pairs; ++p) ++s.counts[ids[p]];
  s.offsets.assign(static_cast<size_t>(E) + 1, 0);
  for (int64_t e = 0; e < E; ++e) s.offsets[e + 1] = s.offsets[e] + s.counts[e];
  s.order.resize(static_cast<size_t>(n_pairs));
  std::vector<int32_t>& fill = s.counts;  // reused as the fill cursor of each expert
  std::fill(fill.begin(), fill.end(), 0);
  for (int64_t p = 0; p < n_pairs; ++p) s.order[s.offsets[ids[p]] + fill[ids[p]]++] = static_cast<int32_t>(p);

  s.x.resize(static_cast<size_t>(n_pairs * d));
  s.h.resize(static_cast<size_t>(n_pairs * ff));
  s.u.resize(static_cast<size_t>(n_pairs * ff));
  s.out.resize(static_cast<size_t>(n_pairs * d));
  for (int64_t i = 0; i < n_pairs; ++i) {
    const int64_t t = s.order[i] / k;
    std::copy(x + t * d, x + (t + 1) * d, s.x.data() + i * d);
  }

  // Tasks are (expert, block of output rows): gate and up first, then down once all of that expert's hidden
  // rows exist. Two phases keep every task independent.
  constexpr int64_t kRows = 32;
  const int64_t ff_blocks = (ff + kRows - 1) / kRows, d_blocks = (d + kRows - 1) / kRows;
  pool.parallel_for(E * ff_blocks, [&](int64_t task, int) {
    const int64_t e = task / ff_blocks, r0 = (task % ff_blocks) * kRows;
    const int64_t m = s.offsets[e + 1] - s.offsets[e];
    if (m == 0) return;
    const int64_t nr = std::min(kRows, ff - r0);
    const float* xe = s.x.data() + s.offsets[e] * d;
    Matrix g = w.expert(w.gate, e), u = w.expert(w.up, e);
    g.data = g.row(r0);
    u.data = u.row(r0);
    g.rows = u.rows = nr;
    float* he = s.h.data() + s.offsets[e] * ff + r0;
    float* ue = s.u.data() + s.offsets[e] * ff + r0;
    matmul_serial(g, xe, d, m, he, ff);
    matmul_serial(u, xe, d, m, ue, ff);
    for (int64_t i = 0; i < m; ++i) silu_mul(he + i * ff, ue + i * ff, nr);
  });
  pool.parallel_for(E * d_blocks, [&](int64_t task, int) {
    const int64_t e = task / d_blocks, r0 = (task % d_blocks) * kRows;
    const int64_t m = s.offsets[e + 1] - s.offsets[e];
    if (m == 0) return;
    Matrix dn = w.expert(w.down, e);
    dn.data = dn.row(r0);
    dn.rows = std::min(kRows, d - r0);
    matmul_serial(dn, s.h.data() + s.offsets[e] * ff, ff, m, s.out.data() + s.offsets[e] * d + r0, d);
  });

  // Weighted sum in a fixed order per token, so results do not depend on the thread count.
  std::fill(y, y + n_tokens * d, 0.0f);
  std::vector<int32_t>& slot_of = s.counts;  // position in `order` of each (token, slot) pair
  slot_of.resize(static_cast<size_t>(n_pairs));
  for (int64_t i = 0; i < n_pairs; ++i) slot_of[s.order[i]] = static_cast<int32_t>(i);
  for (int64_t p = 0; p < n_pairs; ++p) {
    axpy_f32(weights[p], s.out.data() + static_cast<int64_t>(slot_of[p]) * d, y + (p / k) * d, d);
  }
}

}  // namespace onecard::cpu
