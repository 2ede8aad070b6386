#include "cpu/matmul_serial.h"

#include <algorithm>
#include <vector>

#include "cpu/matmul.h"
#include "cpu/vec.h"
#include "quant/dequantize.h"

namespace onecard::cpu {

void matmul_serial(const Matrix& w, const float* x, int64_t ldx, int64_t n, float* y, int64_t ldy) {
  matmul_isa(w, x, ldx, n, y, ldy, nullptr, active_isa());
}

void matmul_transposed_serial(const Matrix& w, const float* x, int64_t ldx, int64_t n, float* y,
                              int64_t ldy) {
  const quant::DequantizeFn dequantize = quant::dequantize_fn(w.type);
  // Per-thread row buffer: grows to the widest row once, then the hot path allocates nothing.
  thread_local std::vector<float> buf;
  if (static_cast<int64_t>(buf.size()) < w.cols) buf.resize(static_cast<size_t>(w.cols));
  for (int64_t t = 0; t < n; ++t) std::fill(y + t * ldy, y + t * ldy + w.cols, 0.0f);
  for (int64_t r = 0; r < w.rows; ++r) {
    const float* wr = buf.data();
    if (w.type == gguf::GgmlType::F32) {
      wr = reinterpret_cast<const float*>(w.row(r));
    } else {
      dequantize(w.row(r), buf.data(), w.cols);
    }
    for (int64_t t = 0; t < n; ++t) axpy_f32(x[t * ldx + r], wr, y + t * ldy, w.cols);
  }
}

}  // namespace onecard::cpu
