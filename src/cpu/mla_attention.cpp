#include "cpu/mla_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "base/half.h"
#include "cpu/kernels.h"
#include "cpu/matmul_serial.h"
#include "cpu/ops.h"

namespace onecard::cpu {
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
  const bool bf16 = kv.pages->type() == backend::KvType::kBF16;
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

// One block of an online softmax: the running maximum mx moves up to the block's, the sum and the weighted
// rows so far (acc, len floats) are rescaled to it, and the scores s[0, n) become their weights
// exp(s - mx), added to the sum.
void online_softmax_block(float* s, int64_t n, float& mx, float& sum, float* acc, int64_t len) {
  const float top = std::max(mx, max_of(s, n));
  if (top > mx) {
    // exp(-inf) = 0 for the first block: acc and sum start at 0 either way.
    const float rescale = std::exp(mx - top);
    for (int64_t c = 0; c < len; ++c) acc[c] *= rescale;
    sum *= rescale;
    mx = top;
  }
  sum += exp_sum(s, n, mx);
}

// Positions of a block whose rows stay in the L2 cache between their scores and their weighted sum.
constexpr int64_t kLatentBlock = 128;

// Scores, online softmax and weighted rows of g latent-space queries qc (rows of `width`) over positions
// [a, b) of (layer, seq), a block at a time: o, mx and sum (per head) carry the running state across blocks
// and calls, as LatentPartial describes.
void attend_range(const KvView& kv, int layer, int seq, int64_t a, int64_t b, const float* qc, int g,
                  int64_t width, int64_t kvl, float scale, MlaScratch& sc, float* o, float* mx, float* sum) {
  const KernelTable& k = active_kernels();
  const bool bf16 = kv.pages->type() == backend::KvType::kBF16;
  const LatentKernels& lk = bf16 ? k.latent_bf16 : k.latent_f32;
  const size_t row_bytes = static_cast<size_t>(width) * (bf16 ? sizeof(uint16_t) : sizeof(float));
  const int64_t page_tokens = kv.pages->page_tokens();
  float* scores = sized(sc.scores, static_cast<size_t>(g * kLatentBlock));
  for (int64_t start = a; start < b;) {
    const int64_t end = std::min(b, start + kLatentBlock), n = end - start;
    sc.piece_rows.clear();
    sc.piece_len.clear();
    for (int64_t pos = start; pos < end;) {
      const int64_t slot = pos % page_tokens, m = std::min(page_tokens - slot, end - pos);
      const void* rows =
          static_cast<const uint8_t*>(kv.pages->page(layer, kv.tables[seq][pos / page_tokens])) +
          static_cast<size_t>(slot) * row_bytes;
      lk.scores(qc, g, width, rows, m, width, scale, scores + (pos - start), kLatentBlock);
      sc.piece_rows.push_back(rows);
      sc.piece_len.push_back(m);
      pos += m;
    }
    for (int j = 0; j < g; ++j)
      online_softmax_block(scores + j * kLatentBlock, n, mx[j], sum[j], o + j * kvl, kvl);
    for (size_t i = 0, offset = 0; i < sc.piece_rows.size(); offset += sc.piece_len[i], ++i) {
      lk.sum(scores + offset, kLatentBlock, g, sc.piece_rows[i], sc.piece_len[i], width, kvl, o, kvl);
    }
    start = end;
  }
}

}  // namespace

LatentWeights latent_weights(const backend::LatentProjections& p) {
  LatentWeights l;
  for (const backend::Weight& w : p.uk) l.uk.push_back(to_matrix(w));
  for (const backend::Weight& w : p.uv) l.uv.push_back(to_matrix(w));
  l.uk_transposed = p.uk_transposed;
  return l;
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

void latent_queries(const MlaShape& s, const LatentWeights& l, int64_t h0, int g, const float* q, int count,
                    std::vector<float>& out) {
  const int64_t width = s.width, kvl = s.kv_lora, qkd = s.nope + s.rope;
  float* qcat = sized(out, static_cast<size_t>(count * g * width));
  for (int j = 0; j < g; ++j) {
    const int64_t h = h0 + j;
    const float* qh = q + h * qkd;
    if (!l.uk_rows.empty()) {
      matmul_serial(l.uk_rows[h], qh, s.q_stride(), count, qcat + j * width, g * width);
    } else if (l.uk_transposed) {
      matmul_transposed_serial(l.uk[h], qh, s.q_stride(), count, qcat + j * width, g * width);
    } else {
      matmul_serial(l.uk[h], qh, s.q_stride(), count, qcat + j * width, g * width);
    }
    for (int t = 0; t < count; ++t) {
      std::memcpy(qcat + (t * g + j) * width + kvl, qh + t * s.q_stride() + s.nope,
                  static_cast<size_t>(s.rope) * sizeof(float));
    }
  }
}

void attend_absorbed_part(const MlaShape& s, int g, const float* qcat, const BatchToken* tokens, int count,
                          const KvView& kv, int layer, int64_t p0, int64_t p1, LatentPartial& part,
                          MlaScratch& sc) {
  const int64_t width = s.width, kvl = s.kv_lora;
  part.o.assign(static_cast<size_t>(count * g * kvl), 0.0f);
  part.max.assign(static_cast<size_t>(count * g), -std::numeric_limits<float>::infinity());
  part.sum.assign(static_cast<size_t>(count * g), 0.0f);
  for (int t = 0; t < count; ++t) {
    const int64_t b = std::min<int64_t>(p1, tokens[t].pos + 1);
    if (p0 >= b) continue;
    attend_range(kv, layer, tokens[t].seq, p0, b, qcat + t * g * width, g, width, kvl, s.scale, sc,
                 part.o.data() + t * g * kvl, part.max.data() + t * g, part.sum.data() + t * g);
  }
}

void finish_absorbed(const MlaShape& s, const LatentWeights& l, int64_t h0, int g, int count,
                     std::span<const LatentPartial> parts, float* out, MlaScratch& sc, float* latents) {
  const int64_t kvl = s.kv_lora;
  float* olat = sized(sc.olat, static_cast<size_t>(count * g * kvl));
  for (int64_t i = 0; i < count * g; ++i) {
    float top = -std::numeric_limits<float>::infinity();
    for (const LatentPartial& p : parts) top = std::max(top, p.max[i]);
    double total = 0;
    for (const LatentPartial& p : parts) total += p.sum[i] * std::exp(p.max[i] - top);
    float* o = olat + i * kvl;
    std::fill(o, o + kvl, 0.0f);
    for (const LatentPartial& p : parts) {
      if (p.sum[i] == 0) continue;
      const auto w = static_cast<float>(std::exp(p.max[i] - top) / total);
      const float* po = p.o.data() + i * kvl;
      for (int64_t c = 0; c < kvl; ++c) o[c] += w * po[c];
    }
  }
  if (latents != nullptr) {
    for (int t = 0; t < count; ++t)
      std::copy(olat + t * g * kvl, olat + (t + 1) * g * kvl, latents + (t * s.n_head + h0) * kvl);
  }
  for (int j = 0; j < g; ++j) {
    matmul_serial(l.uv[h0 + j], olat + j * kvl, g * kvl, count, out + (h0 + j) * s.v, s.out_stride());
  }
}

void attend_absorbed(const MlaShape& s, const LatentWeights& l, int64_t h0, int g, const float* q,
                     const BatchToken* tokens, int count, const KvView& kv, int layer, float* out,
                     MlaScratch& sc, float* latents) {
  latent_queries(s, l, h0, g, q, count, sc.qcat);
  attend_absorbed_part(s, g, sc.qcat.data(), tokens, count, kv, layer, 0, std::numeric_limits<int64_t>::max(),
                       sc.part, sc);
  finish_absorbed(s, l, h0, g, count, std::span<const LatentPartial>(&sc.part, 1), out, sc, latents);
}

// Tokens of a prompt whose scores against a block of keys are taken together (a multiple of the sums'
// 8 heads and the scores' 2).
constexpr int kCausalRun = 16;

void attend_expanded(const MlaShape& s, const LatentWeights& l, int64_t h, const float* q,
                     const BatchToken* tokens, int count, const KvView& kv, int layer, float* out,
                     MlaScratch& sc) {
  const int64_t width = s.width, nope = s.nope, rope = s.rope, v = s.v, qkd = nope + rope, kb = s.key_block;
  const int seq = tokens[0].seq;
  const int64_t n_keys = tokens[count - 1].pos + 1;
  const float* qh = q + h * qkd;
  const LatentKernels& lk = active_kernels().latent_f32;
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
      matmul_serial(l.uk[h], rows, width, nk, keys, qkd);
    } else {
      matmul_transposed_serial(l.uk[h], rows, width, nk, keys, qkd);
    }
    for (int64_t k = 0; k < nk; ++k) {
      std::memcpy(keys + k * qkd + nope, rows + k * width + s.kv_lora,
                  static_cast<size_t>(rope) * sizeof(float));
    }
    matmul_serial(l.uv[h], rows, width, nk, values, v);
    // A causal prompt sees half of the square of its keys: each run of kCausalRun tokens multiplies only the
    // keys the furthest-placed of them may see, and a run that sees none of the block is skipped. Every score
    // and sum that is computed is computed as over the whole block, so the result does not change.
    const auto visible_of = [&](int t) { return std::clamp<int64_t>(tokens[t].pos + 1 - k0, 0, nk); };
    for (int t0 = 0; t0 < count; t0 += kCausalRun) {
      const int run = std::min(kCausalRun, count - t0);
      int64_t seen = 0;
      for (int t = t0; t < t0 + run; ++t) seen = std::max(seen, visible_of(t));
      if (seen == 0) continue;
      float* sr = scores + t0 * kb;
      lk.scores(qh + t0 * s.q_stride(), run, s.q_stride(), keys, seen, qkd, s.scale, sr, kb);
      // Online softmax: each token's sums so far rescaled to its new maximum, then the block's weights (zero
      // for the keys it may not see) added with the values in one product for the run's tokens.
      for (int t = t0; t < t0 + run; ++t) {
        float* st = scores + t * kb;
        const int64_t visible = visible_of(t);
        if (visible > 0) online_softmax_block(st, visible, row_max[t], row_sum[t], acc + t * v, v);
        std::fill(st + visible, st + seen, 0.0f);
      }
      lk.sum(sr, kb, run, values, seen, v, v, acc + t0 * v, v);
    }
  }
  for (int t = 0; t < count; ++t) {
    const float inv = 1.0f / row_sum[t];
    float* o = out + t * s.out_stride() + h * v;
    for (int64_t i = 0; i < v; ++i) o[i] = acc[t * v + i] * inv;
  }
}

}  // namespace onecard::cpu
