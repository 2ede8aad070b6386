#include "model/mla_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "base/half.h"
#include "cpu/matmul_serial.h"
#include "cpu/ops.h"
#include "cpu/vec.h"

namespace onecard::model {
namespace {

template <class T>
T* sized(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

// Cache rows [first, first + n) of (layer, seq) as float32 rows of `width` values.
const float* cache_rows_f32(const KvCache& cache, int layer, int seq, int64_t first, int64_t n, int64_t width,
                            std::vector<float>& buf) {
  if (cache.type() == KvType::kF32) return static_cast<const float*>(cache.rows(layer, seq)) + first * width;
  const auto* src = static_cast<const uint16_t*>(cache.rows(layer, seq)) + first * width;
  float* dst = sized(buf, static_cast<size_t>(n * width));
  for (int64_t i = 0; i < n * width; ++i) dst[i] = bf16_to_fp32(src[i]);
  return dst;
}

}  // namespace

std::string_view attention_mode_name(AttentionMode m) {
  switch (m) {
    case AttentionMode::kAbsorbed:
      return "absorbed";
    case AttentionMode::kExpanded:
      return "expanded";
    case AttentionMode::kAuto:
      break;
  }
  return "auto";
}

bool prefer_expanded(const MlaShape& s, const BatchToken* tokens, int count) {
  const double project = static_cast<double>(s.kv_lora) * static_cast<double>(s.nope + s.v);
  double pairs = 0;
  for (int i = 0; i < count; ++i) pairs += tokens[i].pos + 1;
  const double n_keys = tokens[count - 1].pos + 1;
  const double absorbed = count * project + pairs * static_cast<double>(2 * s.kv_lora + s.rope);
  const double expanded = n_keys * project + pairs * static_cast<double>(s.nope + s.rope + s.v);
  return expanded < absorbed;
}

void attend_absorbed(const MlaShape& s, const LayerWeights& l, int64_t h, const float* q,
                     const BatchToken* tokens, int count, const KvCache& cache, int layer, float* out,
                     MlaScratch& sc) {
  const int64_t width = s.width, kvl = s.kv_lora;
  const float* qh = q + h * (s.nope + s.rope);
  float* qcat = sized(sc.qcat, static_cast<size_t>(count * width));
  float* olat = sized(sc.olat, static_cast<size_t>(count * kvl));
  // The latent-space queries of the whole run at once: [q_lat | q_pe] per token.
  if (l.uk_transposed) {
    cpu::matmul_transposed_serial(l.uk[h], qh, s.q_stride(), count, qcat, width);
  } else {
    cpu::matmul_serial(l.uk[h], qh, s.q_stride(), count, qcat, width);
  }
  const bool bf16 = cache.type() == KvType::kBF16;
  for (int t = 0; t < count; ++t) {
    float* qc = qcat + t * width;
    std::memcpy(qc + kvl, qh + t * s.q_stride() + s.nope, static_cast<size_t>(s.rope) * sizeof(float));
    const int64_t n_pos = tokens[t].pos + 1;
    const void* rows = cache.rows(layer, tokens[t].seq);
    float* scores = sized(sc.scores, static_cast<size_t>(n_pos));
    float* o = olat + t * kvl;
    std::fill(o, o + kvl, 0.0f);
    if (bf16) {
      const auto* r = static_cast<const uint16_t*>(rows);
      for (int64_t p = 0; p < n_pos; ++p) scores[p] = cpu::dot_f32_bf16(qc, r + p * width, width) * s.scale;
      cpu::softmax(scores, n_pos);
      for (int64_t p = 0; p < n_pos; ++p) cpu::axpy_bf16(scores[p], r + p * width, o, kvl);
    } else {
      const auto* r = static_cast<const float*>(rows);
      for (int64_t p = 0; p < n_pos; ++p) scores[p] = cpu::dot_f32(qc, r + p * width, width) * s.scale;
      cpu::softmax(scores, n_pos);
      for (int64_t p = 0; p < n_pos; ++p) cpu::axpy_f32(scores[p], r + p * width, o, kvl);
    }
  }
  cpu::matmul_serial(l.uv[h], olat, kvl, count, out + h * s.v, s.out_stride());
}

void attend_expanded(const MlaShape& s, const LayerWeights& l, int64_t h, const float* q,
                     const BatchToken* tokens, int count, const KvCache& cache, int layer, float* out,
                     MlaScratch& sc) {
  const int64_t width = s.width, nope = s.nope, rope = s.rope, v = s.v;
  const int seq = tokens[0].seq;
  const int64_t n_keys = tokens[count - 1].pos + 1;
  const float* qh = q + h * (nope + rope);
  float* keys = sized(sc.keys, static_cast<size_t>(s.key_block * nope));
  float* values = sized(sc.values, static_cast<size_t>(s.key_block * v));
  float* scores = sized(sc.scores, static_cast<size_t>(s.key_block));
  float* row_max = sized(sc.row_max, static_cast<size_t>(count));
  float* row_sum = sized(sc.row_sum, static_cast<size_t>(count));
  float* acc = sized(sc.acc, static_cast<size_t>(count * v));
  std::fill(row_max, row_max + count, -std::numeric_limits<float>::infinity());
  std::fill(row_sum, row_sum + count, 0.0f);
  std::fill(acc, acc + count * v, 0.0f);

  for (int64_t k0 = 0; k0 < n_keys; k0 += s.key_block) {
    const int64_t nk = std::min(s.key_block, n_keys - k0);
    const float* rows = cache_rows_f32(cache, layer, seq, k0, nk, width, sc.latents);
    // K_nope = W_UK c and V = W_UV c for this block of keys.
    if (l.uk_transposed) {
      cpu::matmul_serial(l.uk[h], rows, width, nk, keys, nope);
    } else {
      cpu::matmul_transposed_serial(l.uk[h], rows, width, nk, keys, nope);
    }
    cpu::matmul_serial(l.uv[h], rows, width, nk, values, v);
    for (int t = 0; t < count; ++t) {
      const int64_t visible = std::min(nk, tokens[t].pos + 1 - k0);
      if (visible <= 0) continue;
      const float* qt = qh + t * s.q_stride();
      float block_max = -std::numeric_limits<float>::infinity();
      for (int64_t k = 0; k < visible; ++k) {
        scores[k] = (cpu::dot_f32(qt, keys + k * nope, nope) +
                     cpu::dot_f32(qt + nope, rows + k * width + s.kv_lora, rope)) *
                    s.scale;
        block_max = std::max(block_max, scores[k]);
      }
      // Online softmax: rescale what was summed so far to the new maximum.
      const float new_max = std::max(row_max[t], block_max);
      const float rescale = std::exp(row_max[t] - new_max);
      float* a = acc + t * v;
      for (int64_t i = 0; i < v; ++i) a[i] *= rescale;
      float sum = row_sum[t] * rescale;
      for (int64_t k = 0; k < visible; ++k) {
        const float p = std::exp(scores[k] - new_max);
        sum += p;
        cpu::axpy_f32(p, values + k * v, a, v);
      }
      row_max[t] = new_max;
      row_sum[t] = sum;
    }
  }
  for (int t = 0; t < count; ++t) {
    const float inv = 1.0f / row_sum[t];
    float* o = out + t * s.out_stride() + h * v;
    for (int64_t i = 0; i < v; ++i) o[i] = acc[t * v + i] * inv;
  }
}

}  // namespace onecard::model
