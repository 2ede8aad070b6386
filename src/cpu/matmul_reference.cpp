#include <vector>

#include "cpu/matmul.h"
#include "quant/dequantize.h"

namespace onecard::cpu {

Status check_matmul_type(gguf::GgmlType type) {
  if (quant::can_dequantize(type)) return {};
  return make_error("weights of type {} cannot be multiplied (no kernel for that format)",
                    gguf::type_name(type));
}

void matmul_reference(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy) {
  const quant::DequantizeFn dequantize = quant::dequantize_fn(w.type);
  std::vector<float> row(static_cast<size_t>(w.cols));
  for (int64_t r = 0; r < w.rows; ++r) {
    dequantize(w.row(r), row.data(), w.cols);
    for (int64_t t = 0; t < n_tokens; ++t) {
      const float* xt = x + t * ldx;
      double acc = 0;
      for (int64_t c = 0; c < w.cols; ++c) acc += static_cast<double>(row[c]) * xt[c];
      y[t * ldy + r] = static_cast<float>(acc);
    }
  }
}

}  // namespace onecard::cpu
