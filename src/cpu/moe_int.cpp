// The experts of a MoE layer for integer weight formats. Each token is quantized once for gate and up; an
// expert with enough tokens runs the batched kernel on blocks of rows, otherwise every row is a dot product
// per token. Gate and up rows of a block are multiplied together and SiLU(gate)·up is formed while they are
// in cache, then the hidden rows are quantized once and multiplied by down.
#include <algorithm>

#include "cpu/moe_int.h"
#include "cpu/ops.h"
#include "cpu/scratch.h"

namespace onecard::cpu {
namespace {

constexpr int64_t kRows = kPackedBlockRows;  // output rows per task: one block of the packed layout

// Task t of a phase whose experts are split into blocks of kRows output rows (`rows` in all): expert e, rows
// [r0, r0 + nr), and the expert's pairs [first, first + m) in expert order.
struct Block {
  int32_t e;
  int64_t r0, nr, first, m;
};

Block block_of(const MoeScratch& s, int64_t t, int64_t rows) {
  const int64_t blocks = (rows + kRows - 1) / kRows;
  const int32_t e = s.active[t / blocks];
  const int64_t r0 = (t % blocks) * kRows, first = s.offsets[e];
  return {e, r0, std::min(kRows, rows - r0), first, s.offsets[e + 1] - first};
}

// The rows of task t's block of m (or nothing past the last task), to be prefetched.
struct Next {
  const uint8_t* data = nullptr;
  size_t bytes = 0;
};

Next next_rows(const MoeScratch& s, const ExpertWeights& w, const Matrix& m, int64_t t, int64_t n_tasks) {
  if (t >= n_tasks) return {};
  const Block b = block_of(s, t, m.rows);
  return {w.expert(m, b.e).row(b.r0), static_cast<size_t>(b.nr) * m.row_bytes};
}

}  // namespace

void moe_experts_int(const IntFormat& gf, const IntFormat& df, const ExpertWeights& w, const float* x,
                     int64_t n_tokens, int k, ThreadPool& pool, MoeScratch& s, const KernelTable& kt) {
  const int64_t d = w.gate.cols, ff = w.gate.rows, n_pairs = n_tokens * k;
  // What the table has for the two formats: a batched kernel, used from gemm.min_tokens tokens on an expert,
  // and a kernel for weights packed at load, used whenever the tensors were packed.
  const GemmKernel &gate_gemm = kt.gemm[gf.type], &down_gemm = kt.gemm[df.type];
  const PackedKernel &gate_pk = kt.packed[gf.type], &down_pk = kt.packed[df.type];
  const bool gate_packed = gate_pk && w.gate_packed && w.up_packed, down_packed = down_pk && w.down_packed;
  // Both batched kernels read per-token sums beside the quantized rows.
  const bool gate_sides = gate_gemm || gate_packed, down_sides = down_gemm || down_packed;

  const size_t xrow = act_row_bytes(gf.act, d), hrow = act_row_bytes(df.act, ff);
  const size_t xside = gate_sides ? token_side_bytes(gf, d) : 0;
  const size_t hside = down_sides ? token_side_bytes(df, ff) : 0;
  uint8_t* xq = grow(s.acts, xrow * n_tokens + hrow * n_pairs);
  uint8_t* hq = xq + xrow * n_tokens;
  uint8_t* xs = grow(s.sides, xside * n_tokens + hside * n_pairs);
  uint8_t* hs = xs + xside * n_tokens;
  const uint8_t** act_of = grow(s.act_of, static_cast<size_t>(n_pairs));
  const uint8_t** side_of = grow(s.side_of, static_cast<size_t>(n_pairs));
  pool.parallel_for(n_tokens, [&](int64_t t, int) {
    quantize_act(gf.act, x + t * d, xq + t * xrow, d);
    if (gate_sides) token_side(gf, d, xq + t * xrow, xs + t * xside);
  });
  for (int64_t i = 0; i < n_pairs; ++i) {
    const int64_t t = s.order[i] / k;
    act_of[i] = xq + t * xrow;
    side_of[i] = xs + t * xside;
  }
  // Tasks are claimed kGrain at a time, so a thread's next task is usually the following one: its weights are
  // prefetched while this one computes (at the end of a claim that is a guess).
  constexpr int64_t kGrain = 4;

  // Gate and up, fused per block of hidden rows.
  float* h = grow(s.h, static_cast<size_t>(n_pairs * ff));
  const int64_t ff_blocks = (ff + kRows - 1) / kRows;
  const VecDotFn gate_dot = kt.row_dot[gf.type];
  const auto n_tasks1 = static_cast<int64_t>(s.active.size()) * ff_blocks;
  pool.parallel_for(
      n_tasks1,
      [&](int64_t task, int) {
        const auto [e, r0, nr, first, m] = block_of(s, task, ff);
        const Matrix gate = w.expert(w.gate, e), up = w.expert(w.up, e);
        if (gate_packed || (gate_gemm && m >= gate_gemm.min_tokens)) {
          thread_local std::vector<float> gu;
          float* g = grow(gu, static_cast<size_t>(2 * m * kRows));
          float* u = g + m * kRows;
          const GemmTokens tokens{act_of + first, side_of + first, m};
          if (gate_packed) {
            gate_pk.gemm(w.gate_packed.matrix(e), r0 / kRows, tokens, g, kRows);
            gate_pk.gemm(w.up_packed.matrix(e), r0 / kRows, tokens, u, kRows);
          } else {
            // The rows of the task this thread will likely claim next stream in while these compute.
            const Next next_gate = next_rows(s, w, w.gate, task + 1, n_tasks1);
            const Next next_up = next_rows(s, w, w.up, task + 1, n_tasks1);
            gate_gemm.run(gf, gate, r0, nr, tokens, g, kRows, next_gate.data, next_gate.bytes);
            gate_gemm.run(gf, up, r0, nr, tokens, u, kRows, next_up.data, next_up.bytes);
          }
          for (int64_t i = 0; i < m; ++i) {
            silu_mul(g + i * kRows, u + i * kRows, nr);
            std::copy(g + i * kRows, g + i * kRows + nr, h + (first + i) * ff + r0);
          }
          return;
        }
        // A few tokens at a time, so that each row is read once per group, from cache after the first token.
        constexpr int64_t kDotTokens = 4;
        for (int64_t i0 = 0; i0 < m; i0 += kDotTokens) {
          const int64_t mi = std::min(kDotTokens, m - i0);
          float g[kDotTokens * kRows], u[kDotTokens * kRows];
          for (int64_t r = 0; r < nr; ++r) {
            for (int64_t i = 0; i < mi; ++i) {
              g[i * kRows + r] = gate_dot(gf, d, gate.row(r0 + r), act_of[first + i0 + i]);
              u[i * kRows + r] = gate_dot(gf, d, up.row(r0 + r), act_of[first + i0 + i]);
            }
          }
          for (int64_t i = 0; i < mi; ++i) {
            silu_mul(g + i * kRows, u + i * kRows, nr);
            std::copy(g + i * kRows, g + i * kRows + nr, h + (first + i0 + i) * ff + r0);
          }
        }
      },
      kGrain);

  // Down, on the hidden rows quantized once.
  pool.parallel_for(n_pairs, [&](int64_t i, int) {
    quantize_act(df.act, h + i * ff, hq + i * hrow, ff);
    if (down_sides) token_side(df, ff, hq + i * hrow, hs + i * hside);
    act_of[i] = hq + i * hrow;
    side_of[i] = hs + i * hside;
  });
  float* out = grow(s.out, static_cast<size_t>(n_pairs * d));
  const int64_t d_blocks = (d + kRows - 1) / kRows;
  const VecDotFn down_dot = kt.row_dot[df.type];
  const auto n_tasks2 = static_cast<int64_t>(s.active.size()) * d_blocks;
  pool.parallel_for(
      n_tasks2,
      [&](int64_t task, int) {
        const auto [e, r0, nr, first, m] = block_of(s, task, d);
        const Matrix down = w.expert(w.down, e);
        if (down_packed) {
          down_pk.gemm(w.down_packed.matrix(e), r0 / kRows, GemmTokens{act_of + first, side_of + first, m},
                       out + first * d + r0, d);
          return;
        }
        if (down_gemm && m >= down_gemm.min_tokens) {
          const Next next = next_rows(s, w, w.down, task + 1, n_tasks2);
          down_gemm.run(df, down, r0, nr, GemmTokens{act_of + first, side_of + first, m},
                        out + first * d + r0, d, next.data, next.bytes);
          return;
        }
        for (int64_t r = r0; r < r0 + nr; ++r) {
          for (int64_t i = first; i < first + m; ++i)
            out[i * d + r] = down_dot(df, ff, down.row(r), act_of[i]);
        }
      },
      kGrain);
}

}  // namespace onecard::cpu
