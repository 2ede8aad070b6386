#include "cpu/matmul.h"

#include <algorithm>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/scratch.h"
#include "quant/dequantize.h"

namespace onecard::cpu {
namespace {

// Rows a task of the dequantizing path converts one after another.
constexpr int64_t kRowsPerTask = 16;
// Row dot products stream the weights: a task reads about this many contiguous bytes, so the hardware
// prefetcher runs long stretches, while leaving several tasks per thread to balance.
constexpr size_t kStreamBytesPerTask = size_t{256} << 10;

template <class F>
void run_tasks(ThreadPool* pool, int64_t n, F&& fn) {
  if (pool != nullptr) {
    pool->parallel_for(n, [&](int64_t i, int) { fn(i); });
  } else {
    for (int64_t i = 0; i < n; ++i) fn(i);
  }
}

int64_t row_tasks(const Matrix& w) {
  return (w.rows + kRowsPerTask - 1) / kRowsPerTask;
}

// Rows per task for the streaming paths: a multiple of 16, at most ~kStreamBytesPerTask, and small enough
// that every thread gets four tasks.
int64_t stream_rows(const Matrix& w, const ThreadPool* pool) {
  const int64_t threads = pool != nullptr ? pool->size() : 1;
  int64_t rows = static_cast<int64_t>(kStreamBytesPerTask / std::max<size_t>(1, w.row_bytes));
  rows = std::min(rows, w.rows / (4 * threads));
  return std::max<int64_t>(16, rows / 16 * 16);
}

void float_path(const Matrix& w, const float* x, int64_t ldx, int64_t nt, float* y, int64_t ldy,
                ThreadPool* pool, const KernelTable& k) {
  const FloatDotFn dot = k.float_dot[w.type];
  const int64_t per_task = stream_rows(w, pool);
  run_tasks(pool, (w.rows + per_task - 1) / per_task, [&](int64_t task) {
    const int64_t r1 = std::min(w.rows, (task + 1) * per_task);
    float out[kFloatTokens];
    for (int64_t r = task * per_task; r < r1; ++r) {
      for (int64_t t = 0; t < nt; t += kFloatTokens) {
        const int n = static_cast<int>(std::min<int64_t>(kFloatTokens, nt - t));
        dot(w.row(r), x + t * ldx, ldx, n, w.cols, out);
        for (int i = 0; i < n; ++i) y[(t + i) * ldy + r] = out[i];
      }
    }
  });
}

// Formats without an integer path: each row dequantized to float by its reference, then the float kernel.
void dequantize_path(const Matrix& w, const float* x, int64_t ldx, int64_t nt, float* y, int64_t ldy,
                     ThreadPool* pool, const KernelTable& k) {
  const quant::DequantizeFn dequantize = quant::dequantize_fn(w.type);
  const FloatDotFn dot = k.float_dot[gguf::GgmlType::F32];
  run_tasks(pool, row_tasks(w), [&](int64_t task) {
    thread_local std::vector<float> row;
    float* wr = grow(row, static_cast<size_t>(w.cols));
    const int64_t r1 = std::min(w.rows, (task + 1) * kRowsPerTask);
    float out[kFloatTokens];
    for (int64_t r = task * kRowsPerTask; r < r1; ++r) {
      dequantize(w.row(r), wr, w.cols);
      for (int64_t t = 0; t < nt; t += kFloatTokens) {
        const int n = static_cast<int>(std::min<int64_t>(kFloatTokens, nt - t));
        dot(wr, x + t * ldx, ldx, n, w.cols, out);
        for (int i = 0; i < n; ++i) y[(t + i) * ldy + r] = out[i];
      }
    }
  });
}

void int_path(const IntFormat& f, const Matrix& w, const float* x, int64_t ldx, int64_t nt, float* y,
              int64_t ldy, ThreadPool* pool, const KernelTable& k) {
  thread_local std::vector<uint8_t> act_buf, side_buf;
  thread_local std::vector<const uint8_t*> act_ptrs, side_ptrs;
  const size_t act_row = act_row_bytes(f.act, w.cols);
  uint8_t* acts = grow(act_buf, act_row * static_cast<size_t>(nt));
  const GemmKernel& gemm = k.gemm[f.type];
  const bool batched = gemm && nt >= gemm.min_tokens;
  const size_t side_row = batched ? token_side_bytes(f, w.cols) : 0;
  uint8_t* sides = grow(side_buf, side_row * static_cast<size_t>(nt));
  run_tasks(nt > 1 ? pool : nullptr, nt, [&](int64_t t) {
    quantize_act(f.act, x + t * ldx, acts + t * act_row, w.cols);
    if (batched) token_side(f, w.cols, acts + t * act_row, sides + t * side_row);
  });

  if (batched) {
    const uint8_t** a = grow(act_ptrs, static_cast<size_t>(nt));
    const uint8_t** sd = grow(side_ptrs, static_cast<size_t>(nt));
    for (int64_t t = 0; t < nt; ++t) {
      a[t] = acts + t * act_row;
      sd[t] = sides + t * side_row;
    }
    run_tasks(pool, (w.rows + gemm.block_rows - 1) / gemm.block_rows, [&](int64_t task) {
      const int64_t r0 = task * gemm.block_rows, nr = std::min(gemm.block_rows, w.rows - r0);
      gemm.run(f, w, r0, nr, GemmTokens{a, sd, nt}, y + r0, ldy, nullptr, 0);
    });
    return;
  }

  const VecDotFn dot = k.row_dot[f.type];
  const int64_t per_task = stream_rows(w, pool);
  run_tasks(pool, (w.rows + per_task - 1) / per_task, [&](int64_t task) {
    const int64_t r1 = std::min(w.rows, (task + 1) * per_task);
    for (int64_t r = task * per_task; r < r1; ++r) {
      for (int64_t t = 0; t < nt; ++t) y[t * ldy + r] = dot(f, w.cols, w.row(r), acts + t * act_row);
    }
  });
}

}  // namespace

void matmul_isa(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy,
                ThreadPool* pool, Isa isa) {
  if (n_tokens <= 0 || w.rows <= 0) return;
  const KernelTable& k = kernels(isa);
  if (is_float_type(w.type)) return float_path(w, x, ldx, n_tokens, y, ldy, pool, k);
  if (const IntFormat* f = int_format(w.type)) return int_path(*f, w, x, ldx, n_tokens, y, ldy, pool, k);
  dequantize_path(w, x, ldx, n_tokens, y, ldy, pool, k);
}

void matmul(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy,
            ThreadPool& pool) {
  matmul_isa(w, x, ldx, n_tokens, y, ldy, &pool, active_isa());
}

}  // namespace onecard::cpu
