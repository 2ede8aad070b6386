#include "model/mla_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "base/half.h"
#include "cpu/kernels.h"
#include "cpu/matmul_serial.h"
#include "cpu/ops.h"

namespace onecard::model {
namespace {

template <class T>
T* sized(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

// Cache rows [first, first + n) of (layer, seq) as float32 rows of `width` values, gathered from their pages.
const float* cache_rows_f32(const KvView& kv, int layer, int seq, int64_t first, int64_t n, int64_t width,
                            std::vector<float>& buf) {
  float* dst = sized(buf, static_cast<size_t>(n * width));
  const int64_t page_tokens = kv.pages->page_tokens();
  const bool bf16 = kv.pages->type() == KvType::kBF16;
  for (int64_t pos = first; pos < first + n;) {
    const int64_t slot = pos % page_tokens;
    const int64_t m = std::min(page_tokens - slot, first + n - pos);
    const void* page = kv.pages->page(layer, kv.tables[seq][pos / page_tokens]);
    float* out = dst + (pos - first) * width;
    if (bf16) {
      const auto* src = static_cast<const uint16_t*>(page) + slot * width;
      for (int64_t i = 0; i < m * width; ++i) out[i] = bf16_to_fp32(src[i]);
    } else {
      std::memcpy(out, static_cast<const float*>(page) + slot * width,
                  static_cast<size_t>(m * width) * sizeof(float));
    }
    pos += m;
  }
  return dst;
}

// Calls f(rows, first, count) for each page of (layer, seq) holding positions [0, n_pos): `rows` points at
// the page's first row, which holds position `first`.
template <class F>
void for_each_page(const KvView& kv, int layer, int seq, int64_t n_pos, F&& f) {
  const int64_t page_tokens = kv.pages->page_tokens();
  const std::span<const int32_t> table = kv.tables[seq];
  for (int64_t first = 0, i = 0; first < n_pos; first += page_tokens, ++i) {
    f(static_cast<const void*>(kv.pages->page(layer, table[i])), first, std::min(page_tokens, n_pos - first));
  }
}

// The latent-space queries of g heads (rows of `width`, qc) against positions [0, n_pos) of a sequence:
// o[j] = softmax(scale * qc[j].rows) . c for each head j. Each page of the cache is multiplied with every
// head's query while it is in cache, so a group of heads reads the sequence's cache from memory once instead
// of once per head.
void attend_latent(const KvView& kv, int layer, int seq, int64_t n_pos, const float* qc, int g, int64_t width,
                   int64_t kvl, float scale, float* scores, float* o) {
  const cpu::KernelTable& k = cpu::active_kernels();
  const cpu::LatentKernels& lk = kv.pages->type() == KvType::kBF16 ? k.latent_bf16 : k.latent_f32;
  for_each_page(kv, layer, seq, n_pos, [&](const void* rows, int64_t first, int64_t m) {
    lk.scores(qc, g, width, rows, m, width, scale, scores + first, n_pos);
  });
  for (int j = 0; j < g; ++j) cpu::softmax(scores + j * n_pos, n_pos);
  for_each_page(kv, layer, seq, n_pos, [&](const void* rows, int64_t first, int64_t m) {
    lk.sum(scores + first, n_pos, g, rows, m, width, kvl, o, kvl);
  });
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

void attend_absorbed(const MlaShape& s, const LayerWeights& l, int64_t h0, int g, const float* q,
                     const BatchToken* tokens, int count, const KvView& kv, int layer, float* out,
                     MlaScratch& sc, float* latents) {
  const int64_t width = s.width, kvl = s.kv_lora, qkd = s.nope + s.rope;
  // Per token, the group's latent-space queries [q_lat | q_pe] one head after another, and their outputs.
  float* qcat = sized(sc.qcat, static_cast<size_t>(count * g * width));
  float* olat = sized(sc.olat, static_cast<size_t>(count * g * kvl));
  for (int j = 0; j < g; ++j) {
    const int64_t h = h0 + j;
    const float* qh = q + h * qkd;
    if (!l.uk_rows.empty()) {
      cpu::matmul_serial(l.uk_rows[h], qh, s.q_stride(), count, qcat + j * width, g * width);
    } else if (l.uk_transposed) {
      cpu::matmul_transposed_serial(l.uk[h], qh, s.q_stride(), count, qcat + j * width, g * width);
    } else {
      cpu::matmul_serial(l.uk[h], qh, s.q_stride(), count, qcat + j * width, g * width);
    }
    for (int t = 0; t < count; ++t) {
      std::memcpy(qcat + (t * g + j) * width + kvl, qh + t * s.q_stride() + s.nope,
                  static_cast<size_t>(s.rope) * sizeof(float));
    }
  }
  for (int t = 0; t < count; ++t) {
    const int64_t n_pos = tokens[t].pos + 1;
    float* scores = sized(sc.scores, static_cast<size_t>(g * n_pos));
    float* o = olat + t * g * kvl;
    std::fill(o, o + g * kvl, 0.0f);
    attend_latent(kv, layer, tokens[t].seq, n_pos, qcat + t * g * width, g, width, kvl, s.scale, scores, o);
    if (latents != nullptr) std::copy(o, o + g * kvl, latents + (t * s.n_head + h0) * kvl);
  }
  for (int j = 0; j < g; ++j) {
    cpu::matmul_serial(l.uv[h0 + j], olat + j * kvl, g * kvl, count, out + (h0 + j) * s.v, s.out_stride());
  }
}

void attend_expanded(const MlaShape& s, const LayerWeights& l, int64_t h, const float* q,
                     const BatchToken* tokens, int count, const KvView& kv, int layer, float* out,
                     MlaScratch& sc) {
  const int64_t width = s.width, nope = s.nope, rope = s.rope, v = s.v, qkd = nope + rope, kb = s.key_block;
  const int seq = tokens[0].seq;
  const int64_t n_keys = tokens[count - 1].pos + 1;
  const float* qh = q + h * qkd;
  const cpu::LatentKernels& lk = cpu::active_kernels().latent_f32;
  // Keys as [K_nope | k_pe] rows, so that one product with the tokens' [q_nope | q_pe] gives the scores.
  float* keys = sized(sc.keys, static_cast<size_t>(kb * qkd));
  float* values = sized(sc.values, static_cast<size_t>(kb * v));
  float* scores = sized(sc.scores, static_cast<size_t>(count * kb));
  float* row_max = sized(sc.row_max, static_cast<size_t>(count));
  float* row_sum = sized(sc.row_sum, static_cast<size_t>(count));
  float* acc = sized(sc.acc, static_cast<size_t>(count * v));
  std::fill(row_max, row_max + count, -std::numeric_limits<float>::infinity());
  std::fill(row_sum, row_sum + count, 0.0f);
  std::fill(acc, acc + count * v, 0.0f);

  for (int64_t k0 = 0; k0 < n_keys; k0 += kb) {
    const int64_t nk = std::min(kb, n_keys - k0);
    const float* rows = cache_rows_f32(kv, layer, seq, k0, nk, width, sc.latents);
    // K_nope = W_UK c and V = W_UV c for this block of keys.
    if (l.uk_transposed) {
      cpu::matmul_serial(l.uk[h], rows, width, nk, keys, qkd);
    } else {
      cpu::matmul_transposed_serial(l.uk[h], rows, width, nk, keys, qkd);
    }
    for (int64_t k = 0; k < nk; ++k) {
      std::memcpy(keys + k * qkd + nope, rows + k * width + s.kv_lora,
                  static_cast<size_t>(rope) * sizeof(float));
    }
    cpu::matmul_serial(l.uv[h], rows, width, nk, values, v);
    lk.scores(qh, count, s.q_stride(), keys, nk, qkd, s.scale, scores, kb);
    // Online softmax: each token's sums so far rescaled to its new maximum, then the block's weights (zero
    // for the keys it may not see) added with the values in one product for all tokens.
    for (int t = 0; t < count; ++t) {
      float* st = scores + t * kb;
      const int64_t visible = std::clamp<int64_t>(tokens[t].pos + 1 - k0, 0, nk);
      if (visible == 0) {
        std::fill(st, st + nk, 0.0f);
        continue;
      }
      const float new_max = std::max(row_max[t], *std::max_element(st, st + visible));
      const float rescale = std::exp(row_max[t] - new_max);
      float* a = acc + t * v;
      for (int64_t i = 0; i < v; ++i) a[i] *= rescale;
      float sum = row_sum[t] * rescale;
      for (int64_t k = 0; k < visible; ++k) {
        st[k] = std::exp(st[k] - new_max);
        sum += st[k];
      }
      std::fill(st + visible, st + nk, 0.0f);
      row_max[t] = new_max;
      row_sum[t] = sum;
    }
    lk.sum(scores, kb, count, values, nk, v, v, acc, v);
  }
  for (int t = 0; t < count; ++t) {
    const float inv = 1.0f / row_sum[t];
    float* o = out + t * s.out_stride() + h * v;
    for (int64_t i = 0; i < v; ++i) o[i] = acc[t * v + i] * inv;
  }
}

}  // namespace onecard::model
