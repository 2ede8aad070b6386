// The experts of a MoE layer for integer weight formats. Each token is quantized once for gate and up; an
// expert with enough tokens packs them into panels for the batched kernel (AVX-512), otherwise every row is
// a dot product per token. Gate and up rows of a block are unpacked and multiplied together, SiLU(gate)·up
// is formed in registers' reach, then the hidden rows are quantized once and multiplied by down.
#include <algorithm>
#include <cmath>

#include "cpu/gemm.h"
#include "cpu/moe_int.h"
#include "cpu/vec_dot.h"

namespace onecard::cpu {
namespace {

constexpr int64_t kRows = 16;     // output rows per task (a multiple of kGemmRows)
constexpr int64_t kPanelMin = 4;  // from this many tokens on an expert uses the batched kernel
// A last panel with this few tokens costs a whole kernel pass; row dot products on the original rows cost
// about 0.4 of a pass per token, so such tails take that path.
constexpr int64_t kTailDots = 2;

// Tokens of an expert with m pairs that go through panels (the rest are row dot products).
int64_t panel_tokens(int64_t m, bool batched) {
  if (!batched || m < kPanelMin) return 0;
  const int64_t tail = m % kPanelTokens;
  return tail != 0 && tail <= kTailDots ? m - tail : m;
}

template <class T>
T* grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

float silu_times(float g, float u) {
  return g / (1.0f + std::exp(-g)) * u;
}

// Packs every panel of the experts that use the batched kernel; rows(pair) is the quantized input row of the
// i-th pair in expert order.
template <class Rows>
void pack_panels(const IntFormat& f, int64_t n, const MoeScratch& s, size_t panel_size, uint8_t* panels,
                 ThreadPool& pool, Rows rows) {
  pool.parallel_for(static_cast<int64_t>(s.panel_expert.size()), [&](int64_t p, int) {
    const int32_t e = s.panel_expert[p];
    const int64_t j = p - s.panel_first[e];
    const int64_t first = s.offsets[e] + j * kPanelTokens;
    const int64_t end = s.offsets[e] + panel_tokens(s.offsets[e + 1] - s.offsets[e], true);
    const int nt = static_cast<int>(std::min<int64_t>(kPanelTokens, end - first));
    const uint8_t* ptrs[kPanelTokens];
    for (int t = 0; t < nt; ++t) ptrs[t] = rows(first + t);
    pack_panel(f, n, ptrs, nt, panels + p * panel_size);
  });
}

}  // namespace

void moe_experts_int(const IntFormat& gf, const IntFormat& df, const ExpertWeights& w, const float* x,
                     int64_t n_tokens, int k, ThreadPool& pool, MoeScratch& s, Isa isa) {
  const int64_t d = w.gate.cols, ff = w.gate.rows, n_pairs = n_tokens * k;
  const bool batched = isa == Isa::Avx512Vnni;

  const size_t xrow = act_row_bytes(gf.act, d), hrow = act_row_bytes(df.act, ff);
  uint8_t* xq = grow(s.acts, xrow * n_tokens + hrow * n_pairs);
  uint8_t* hq = xq + xrow * n_tokens;
  pool.parallel_for(n_tokens, [&](int64_t t, int) { quantize_act(gf.act, x + t * d, xq + t * xrow, d); });

  s.panel_first.assign(static_cast<size_t>(w.n_expert), 0);
  s.panel_expert.clear();
  if (batched) {
    for (int32_t e : s.active) {
      const int64_t mp = panel_tokens(s.offsets[e + 1] - s.offsets[e], batched);
      s.panel_first[e] = static_cast<int64_t>(s.panel_expert.size());
      for (int64_t j = 0; j < (mp + kPanelTokens - 1) / kPanelTokens; ++j) s.panel_expert.push_back(e);
    }
  }
  const size_t panel_size = std::max(panel_bytes(gf, d), panel_bytes(df, ff));
  uint8_t* panels = grow(s.panels, panel_size * s.panel_expert.size());

  // Gate and up, fused per block of hidden rows.
  pack_panels(gf, d, s, panel_size, panels, pool, [&](int64_t i) { return xq + (s.order[i] / k) * xrow; });
  float* h = grow(s.h, static_cast<size_t>(n_pairs * ff));
  const int64_t ff_blocks = (ff + kRows - 1) / kRows;
  const VecDotFn gate_dot = vec_dot_fn(gf, isa);
  const auto n_tasks1 = static_cast<int64_t>(s.active.size()) * ff_blocks;
  const int64_t ahead = pool.size();  // tasks are claimed in order: this thread's next one is about this far
  pool.parallel_for(n_tasks1, [&](int64_t task, int) {
    const int32_t e = s.active[task / ff_blocks];
    const int64_t r0 = (task % ff_blocks) * kRows, nr = std::min(kRows, ff - r0);
    const int64_t first = s.offsets[e], m = s.offsets[e + 1] - first;
    const Matrix gate = w.expert(w.gate, e), up = w.expert(w.up, e);
    const int64_t mp = panel_tokens(m, batched);
    if (mp > 0) {
      // The rows of the task this thread will likely claim next stream in while these compute.
      const uint8_t *next_gate = nullptr, *next_up = nullptr;
      size_t next_bytes = 0;
      if (task + ahead < n_tasks1) {
        const int32_t ne = s.active[(task + ahead) / ff_blocks];
        const int64_t nr0 = ((task + ahead) % ff_blocks) * kRows;
        next_gate = w.expert(w.gate, ne).row(nr0);
        next_up = w.expert(w.up, ne).row(nr0);
        next_bytes = static_cast<size_t>(std::min(kRows, ff - nr0)) * w.gate.row_bytes;
      }
      const int64_t n_panels = (mp + kPanelTokens - 1) / kPanelTokens;
      const size_t slice = (next_bytes + n_panels - 1) / n_panels;
      thread_local std::vector<uint8_t> unpacked;
      const size_t part_size = unpacked_bytes(gf, d, nr);
      uint8_t* ug = grow(unpacked, 2 * part_size);
      uint8_t* uu = ug + part_size;
      unpack_rows(gf, gate, r0, nr, ug);
      unpack_rows(gf, up, r0, nr, uu);
      float g[kPanelTokens * kRows], u[kPanelTokens * kRows];
      for (int64_t p = s.panel_first[e], i = first; i < first + mp; ++p, i += kPanelTokens) {
        const int nt = static_cast<int>(std::min<int64_t>(kPanelTokens, first + mp - i));
        const size_t done = static_cast<size_t>(p - s.panel_first[e]) * slice;
        const size_t part = std::min(slice, next_bytes - std::min(next_bytes, done));
        gemm_panel(gf, d, ug, nr, panels + p * panel_size, nt, g, kRows, next_gate + (part ? done : 0), part);
        gemm_panel(gf, d, uu, nr, panels + p * panel_size, nt, u, kRows, next_up + (part ? done : 0), part);
        for (int t = 0; t < nt; ++t) {
          for (int64_t r = 0; r < nr; ++r)
            h[(i + t) * ff + r0 + r] = silu_times(g[t * kRows + r], u[t * kRows + r]);
        }
      }
    }
    for (int64_t r = r0; r < r0 + nr; ++r) {
      for (int64_t i = first + mp; i < first + m; ++i) {
        const uint8_t* a = xq + (s.order[i] / k) * xrow;
        h[i * ff + r] = silu_times(gate_dot(gf, d, gate.row(r), a), gate_dot(gf, d, up.row(r), a));
      }
    }
  });

  // Down, on the hidden rows quantized once.
  pool.parallel_for(n_pairs, [&](int64_t i, int) { quantize_act(df.act, h + i * ff, hq + i * hrow, ff); });
  pack_panels(df, ff, s, panel_size, panels, pool, [&](int64_t i) { return hq + i * hrow; });
  float* out = grow(s.out, static_cast<size_t>(n_pairs * d));
  const int64_t d_blocks = (d + kRows - 1) / kRows;
  const VecDotFn down_dot = vec_dot_fn(df, isa);
  const auto n_tasks2 = static_cast<int64_t>(s.active.size()) * d_blocks;
  pool.parallel_for(n_tasks2, [&](int64_t task, int) {
    const int32_t e = s.active[task / d_blocks];
    const int64_t r0 = (task % d_blocks) * kRows, nr = std::min(kRows, d - r0);
    const int64_t first = s.offsets[e], m = s.offsets[e + 1] - first;
    const Matrix down = w.expert(w.down, e);
    const int64_t mp = panel_tokens(m, batched);
    if (mp > 0) {
      thread_local std::vector<uint8_t> unpacked;
      uint8_t* ud = grow(unpacked, unpacked_bytes(df, ff, nr));
      unpack_rows(df, down, r0, nr, ud);
      const uint8_t* next = nullptr;
      size_t next_bytes = 0;
      if (task + ahead < n_tasks2) {
        const int64_t nr0 = ((task + ahead) % d_blocks) * kRows;
        next = w.expert(w.down, s.active[(task + ahead) / d_blocks]).row(nr0);
        next_bytes = static_cast<size_t>(std::min(kRows, d - nr0)) * w.down.row_bytes;
      }
      for (int64_t p = s.panel_first[e], i = first; i < first + mp; ++p, i += kPanelTokens) {
        const int nt = static_cast<int>(std::min<int64_t>(kPanelTokens, first + mp - i));
        // The first panel carries the prefetch: down tasks are short.
        const bool lead = p == s.panel_first[e];
        gemm_panel(df, ff, ud, nr, panels + p * panel_size, nt, out + i * d + r0, d, lead ? next : nullptr,
                   lead ? next_bytes : 0);
      }
    }
    for (int64_t r = r0; r < r0 + nr; ++r) {
      for (int64_t i = first + mp; i < first + m; ++i)
        out[i * d + r] = down_dot(df, ff, down.row(r), hq + i * hrow);
    }
  });
}

}  // namespace onecard::cpu
