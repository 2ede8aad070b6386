// The element-wise and per-token ops: RMSNorm, RoPE, SiLU-mul, residual adds, expert routing.
#include "cuda/kernels.h"

namespace onecard::cuda::kernels {
namespace {

constexpr int kThreads = 256;

unsigned blocks_for(int64_t count) {
  return static_cast<unsigned>((count + kThreads - 1) / kThreads);
}

// One block per token; the sum of squares in double, as the CPU's.
__global__ void rms_norm_kernel(const float* x, int64_t ldx, const float* w, int64_t dim, float eps, float* y,
                                int64_t ldy) {
  __shared__ double partial[kThreads];
  const float* xt = x + blockIdx.x * ldx;
  float* yt = y + blockIdx.x * ldy;
  double ss = 0;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) ss += static_cast<double>(xt[i]) * xt[i];
  partial[threadIdx.x] = ss;
  __syncthreads();
  for (int o = blockDim.x / 2; o > 0; o >>= 1) {
    if (threadIdx.x < o) partial[threadIdx.x] += partial[threadIdx.x + o];
    __syncthreads();
  }
  const auto scale = static_cast<float>(1.0 / sqrt(partial[0] / static_cast<double>(dim) + eps));
  // Every thread has read the sum before any writes y, which may be x.
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) yt[i] = xt[i] * scale * w[i];
}

// One thread per (token, head, pair); the angle in float32, as the reference forms it.
__global__ void rope_kernel(const float* freqs, int half, float* x, int64_t ldx, int n_heads,
                            int64_t head_stride, const int32_t* positions, int n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= static_cast<int64_t>(n) * n_heads * half) return;
  const int pair = static_cast<int>(i % half);
  const int64_t h = (i / half) % n_heads, t = i / (static_cast<int64_t>(half) * n_heads);
  const float angle = static_cast<float>(positions[t]) * freqs[pair];
  float c, s;
  sincosf(angle, &s, &c);
  float* p = x + t * ldx + h * head_stride + 2 * pair;
  const float a = p[0], b = p[1];
  p[0] = a * c - b * s;
  p[1] = a * s + b * c;
}

__global__ void silu_mul_kernel(float* gate, const float* up, int64_t count) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

__global__ void add_kernel(float* y, const float* a, const float* b, int64_t count) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count) y[i] += b == nullptr ? a[i] : a[i] + b[i];
}

// One block per token, thread 0 choosing as cpu::route does (the choice is serial and small); scores and
// selection values in shared memory, 2 * n_expert + n_group floats.
__global__ void route_kernel(RouteParams p, const float* logits, int32_t* ids, float* weights) {
  extern __shared__ float shared[];
  if (threadIdx.x != 0) return;
  const int E = p.n_expert;
  float* scores = shared;
  float* select = shared + E;
  float* group_score = shared + 2 * E;
  const float* lt = logits + static_cast<int64_t>(blockIdx.x) * E;
  if (!p.sigmoid) {
    float mx = lt[0];
    for (int e = 1; e < E; ++e) mx = fmaxf(mx, lt[e]);
    double sum = 0;
    for (int e = 0; e < E; ++e) {
      scores[e] = expf(lt[e] - mx);
      sum += scores[e];
    }
    for (int e = 0; e < E; ++e) scores[e] = static_cast<float>(scores[e] / sum);
  } else {
    for (int e = 0; e < E; ++e) scores[e] = 1.0f / (1.0f + expf(-lt[e]));
  }
  for (int e = 0; e < E; ++e) select[e] = p.bias ? scores[e] + p.bias[e] : scores[e];
  const float out = __int_as_float(0xff800000);  // -inf: below any real score
  if (p.n_group > 1) {
    const int per = E / p.n_group;
    for (int g = 0; g < p.n_group; ++g) {
      const float* s = select + g * per;
      float best = out, second = out;
      for (int i = 0; i < per; ++i) {
        if (s[i] > best) {
          second = best;
          best = s[i];
        } else if (s[i] > second) {
          second = s[i];
        }
      }
      group_score[g] = p.bias && per > 1 ? best + second : best;
    }
    // The best n_group_used groups stay (ties to the lower group); the others' experts are excluded.
    for (int g = 0; g < p.n_group; ++g) {
      int better = 0;
      for (int o = 0; o < p.n_group; ++o) {
        better += group_score[o] > group_score[g] || (group_score[o] == group_score[g] && o < g);
      }
      if (better >= p.n_group_used) {
        for (int i = 0; i < per; ++i) select[g * per + i] = out;
      }
    }
  }
  int32_t* it = ids + static_cast<int64_t>(blockIdx.x) * p.k;
  float* wt = weights + static_cast<int64_t>(blockIdx.x) * p.k;
  for (int j = 0; j < p.k; ++j) {
    int best = 0;
    for (int e = 1; e < E; ++e) {
      if (select[e] > select[best]) best = e;
    }
    it[j] = best;
    wt[j] = scores[best];
    select[best] = out;
  }
  if (p.normalize) {
    float sum = 0;
    for (int j = 0; j < p.k; ++j) sum += wt[j];
    for (int j = 0; j < p.k; ++j) wt[j] /= sum;
  }
  for (int j = 0; j < p.k; ++j) wt[j] *= p.scale;
}

}  // namespace

void rms_norm(const float* x, int64_t ldx, const float* w, int64_t dim, float eps, int n, float* y,
              int64_t ldy, cudaStream_t s) {
  if (n > 0) rms_norm_kernel<<<n, kThreads, 0, s>>>(x, ldx, w, dim, eps, y, ldy);
}

void rope(const float* freqs, int half, float* x, int64_t ldx, int n_heads, int64_t head_stride,
          const int32_t* positions, int n, cudaStream_t s) {
  const int64_t count = static_cast<int64_t>(n) * n_heads * half;
  if (count > 0)
    rope_kernel<<<blocks_for(count), kThreads, 0, s>>>(freqs, half, x, ldx, n_heads, head_stride, positions,
                                                       n);
}

void silu_mul(float* gate, const float* up, int64_t count, cudaStream_t s) {
  if (count > 0) silu_mul_kernel<<<blocks_for(count), kThreads, 0, s>>>(gate, up, count);
}

void add(float* y, const float* a, const float* b, int64_t count, cudaStream_t s) {
  if (count > 0) add_kernel<<<blocks_for(count), kThreads, 0, s>>>(y, a, b, count);
}

void route(const RouteParams& p, const float* logits, int n, int32_t* ids, float* weights, cudaStream_t s) {
  const size_t shared =
      (2 * static_cast<size_t>(p.n_expert) + static_cast<size_t>(p.n_group)) * sizeof(float);
  if (n > 0) route_kernel<<<n, 32, shared, s>>>(p, logits, ids, weights);
}

}  // namespace onecard::cuda::kernels
