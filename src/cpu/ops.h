// The small element-wise and row-wise operations of the DeepSeek forward pass, on float32.
#pragma once

#include <cstdint>
#include <vector>

namespace onecard::cpu {

// y = x / sqrt(mean(x^2) + eps) * w. y may be x.
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);

// In place: softmax over n values (the best table's kernel, like silu_mul).
void softmax(float* x, int64_t n);
void softmax_scalar(float* x, int64_t n);
void softmax_avx2(float* x, int64_t n);
void softmax_avx512(float* x, int64_t n);

// The largest of x[0, n), n >= 1 (an online softmax's block maximum). The best table's kernel, like softmax.
float max_of(const float* x, int64_t n);
float max_of_scalar(const float* x, int64_t n);
float max_of_avx2(const float* x, int64_t n);
float max_of_avx512(const float* x, int64_t n);

// In place: x[i] = exp(x[i] - shift), returning their sum; shift is at least the largest x (an online
// softmax's running maximum). The best table's kernel, like softmax.
float exp_sum(float* x, int64_t n, float shift);
float exp_sum_scalar(float* x, int64_t n, float shift);
float exp_sum_avx2(float* x, int64_t n, float shift);
float exp_sum_avx512(float* x, int64_t n, float shift);

// In place: gate[i] = silu(gate[i]) * up[i]. On AVX-512 CPUs the vector version, whose exp differs from
// std::exp by a few units in the last place.
void silu_mul(float* gate, const float* up, int64_t n);
void silu_mul_scalar(float* gate, const float* up, int64_t n);
void silu_mul_avx512(float* gate, const float* up, int64_t n);

// Rotary position embedding over interleaved pairs (x[2i], x[2i+1]), with one frequency per pair.
class Rope {
 public:
  Rope() = default;
  // YaRN is applied when factor > 1 and original_context > 0 (the reference's "max_seq_len >
  // original_seq_len").
  Rope(int dims, float base, float factor, int original_context, float beta_fast, float beta_slow);
  int dims() const { return static_cast<int>(freqs_.size()) * 2; }
  const std::vector<float>& freqs() const { return freqs_; }
  // Rotates n_heads vectors of dims() values, `stride` apart, to position pos.
  void apply(float* x, int n_heads, int64_t stride, int64_t pos) const;

 private:
  std::vector<float> freqs_;
};

}  // namespace onecard::cpu
