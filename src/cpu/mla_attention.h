// Multi-head latent attention over the compressed cache, for one head and a run of consecutive batch tokens,
// in two mathematically equal forms:
// - absorbed: queries move into the latent space (q_lat = W_UK^T q_nope), scores and the weighted sum run
//   over the cached latents directly, and W_UV maps the result back. Cheapest when few queries meet many keys
//   (decode). Each token attends to its own sequence, so a run may mix sequences (all those decoding).
// - expanded: each cached latent is expanded to per-head K and V once, then ordinary attention runs on them,
//   a block of keys at a time with an online softmax so that memory stays bounded. Cheapest for long
//   prefills, where many queries share each key. Its run is one sequence's.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "backend/backend.h"
#include "cpu/matrix.h"

namespace onecard::cpu {

using backend::BatchToken;
using backend::KvView;
using backend::MlaShape;

// A layer's per-head up-projections as the CPU's attention reads them (backend::LatentProjections), plus
// for combined files W_UK per head turned into kv_lora rows of qk_nope (F16; F32 when the file's is F32 or
// BF16), so that decode's q_lat is a plain product instead of a row dequantized per step; uk_rows is empty
// for split files, or where the copy was not made.
struct LatentWeights {
  std::vector<Matrix> uk, uv, uk_rows;
  bool uk_transposed = false;
};
// Views of p's matrices, without turned rows.
LatentWeights latent_weights(const backend::LatentProjections& p);

// The absorbed form over part of each token's context, before the softmax is normalized: per token and head
// the largest score seen (max), the sum of exp(score - max) (sum), and the cache rows weighted by those
// exponentials (o, kv_lora floats per head). A long context split into such parts over threads is read from
// memory once per group of heads, in parallel.
struct LatentPartial {
  std::vector<float> o, max, sum;  // count * g * kv_lora, count * g, count * g
};

// Per-thread buffers, grown on first use to the largest run seen (bounded by the batch size and, for the key
// blocks of the expanded form, by a fixed block length).
struct MlaScratch {
  std::vector<float> qcat, olat, scores, keys, values, latents, row_max, row_sum, acc;
  std::vector<const void*> piece_rows;  // the cache pages of one block of positions
  std::vector<int64_t> piece_len;
  LatentPartial part;  // attend_absorbed's whole-context part
};

// Whether the expanded form costs fewer multiplications for this run of `count` tokens.
bool prefer_expanded(const MlaShape& s, const BatchToken* tokens, int count);

// q: the run's first token's queries (q_pe already rotated); out: the run's first token's head outputs. Both
// are rows of q_stride() / out_stride() floats; the slices of heads [h0, h0 + g) (absorbed) or of head h
// (expanded) are written. The absorbed form takes a group of heads because they all read the same cache rows.
// With `latents`, the absorbed form also stores each head's o_lat there (the run's first token's row of
// n_head * kv_lora floats), for the activation observer.
void attend_absorbed(const MlaShape& s, const LatentWeights& l, int64_t h0, int g, const float* q,
                     const BatchToken* tokens, int count, const KvView& kv, int layer, float* out,
                     MlaScratch& scratch, float* latents = nullptr);
// attend_absorbed in steps, for a context split over threads. The group's latent-space queries [q_lat | q_pe]
// (count * g rows of `width`, token by token, head after head) into `qcat`; then the attention over
// positions [p0, p1) of each token's context only (clipped to its pos + 1) into `part`.
void latent_queries(const MlaShape& s, const LatentWeights& l, int64_t h0, int g, const float* q, int count,
                    std::vector<float>& qcat);
void attend_absorbed_part(const MlaShape& s, int g, const float* qcat, const BatchToken* tokens, int count,
                          const KvView& kv, int layer, int64_t p0, int64_t p1, LatentPartial& part,
                          MlaScratch& scratch);
// The head outputs (and `latents`, as attend_absorbed writes them) from the parts of a split of every
// token's positions [0, pos + 1).
void finish_absorbed(const MlaShape& s, const LatentWeights& l, int64_t h0, int g, int count,
                     std::span<const LatentPartial> parts, float* out, MlaScratch& scratch,
                     float* latents = nullptr);
void attend_expanded(const MlaShape& s, const LatentWeights& l, int64_t h, const float* q,
                     const BatchToken* tokens, int count, const KvView& kv, int layer, float* out,
                     MlaScratch& scratch);

}  // namespace onecard::cpu
