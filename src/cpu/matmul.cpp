#include "cpu/matmul.h"

#include <algorithm>
#include <vector>

#include "cpu/matmul_serial.h"

namespace onecard::cpu {

void matmul(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy,
            ThreadPool& pool) {
  // Row blocks small enough to balance two to a few dozen threads, large enough to amortise claiming them.
  constexpr int64_t kRowsPerTask = 16;
  const int64_t tasks = (w.rows + kRowsPerTask - 1) / kRowsPerTask;
  pool.parallel_for(tasks, [&](int64_t task, int) {
    const int64_t r0 = task * kRowsPerTask;
    const int64_t nr = std::min(kRowsPerTask, w.rows - r0);
    Matrix part = w;
    part.rows = nr;
    part.data = w.row(r0);
    matmul_serial(part, x, ldx, n_tokens, y + r0, ldy);
  });
}

}  // namespace onecard::cpu
