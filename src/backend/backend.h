// The seam between the model and the devices that run it: a small vocabulary of layer-phase ops (embed,
// rms_norm, matmul, rope, silu_mul, add, route, moe, kv_store, mla_attend) on weights that know their device
// and on float32 activations in the backend's memory. The model decides what is computed and where; a backend
// decides how, including any layout it rearranges weights into at load (private to it). Backends know nothing
// of models: every op is described by its shapes and parameters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backend/device.h"
#include "backend/kv.h"
#include "backend/tensor.h"
#include "base/result.h"

namespace onecard::backend {

// Rotary embedding over interleaved pairs (x[2i], x[2i+1]); YaRN when factor > 1 and original_context > 0
// (the reference's "max_seq_len > original_seq_len").
struct RopeConfig {
  int dims = 0;
  float base = 10000.0f;
  float factor = 1.0f;
  int original_context = 0;
  float beta_fast = 32.0f, beta_slow = 1.0f;

  friend bool operator==(const RopeConfig&, const RopeConfig&) = default;
};
// One frequency per pair (dims / 2), YaRN-corrected as the reference computes them.
std::vector<float> rope_frequencies(const RopeConfig& cfg);

enum class Gating { kSoftmax = 1, kSigmoid = 2 };  // the values of expert_gating_func

// Expert selection as DeepSeek's reference gate does it: scores (softmax or sigmoid of the router logits),
// the selection bias, group-limited choice, top-k, and the routing weights.
struct RoutingConfig {
  int n_expert = 0;
  int k = 0;
  int n_group = 1;
  int n_group_used = 1;
  Gating gating = Gating::kSoftmax;
  bool normalize = false;       // divide the chosen weights by their sum
  float scale = 1.0f;           // then multiply them by this
  const float* bias = nullptr;  // added to the scores for selection only, on the backend's device
};

// Multi-head latent attention over the compressed cache.
enum class AttentionMode { kAuto, kAbsorbed, kExpanded };
std::string_view attention_mode_name(AttentionMode m);  // "auto", "absorbed", "expanded"

struct MlaShape {
  int64_t n_head, nope, rope, kv_lora, v, width;  // width = kv_lora + rope: one cache row
  float scale;
  int64_t key_block = 128;                                     // keys expanded at a time by the expanded form
  int64_t q_stride() const { return n_head * (nope + rope); }  // one token's queries
  int64_t out_stride() const { return n_head * v; }            // one token's head outputs
};

// What the routed experts' down projections multiplied, for an activation observer: pair i in expert order
// is (token, slot) p = order[i] (token p / k, expert ids[p]), and its input row is h[i * ff ..]. Valid until
// the next moe call.
struct MoeDownInputs {
  const float* h = nullptr;
  const int32_t* order = nullptr;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual std::string name() const = 0;

  // Memory of this device: allocate (null when it is exhausted), release, zero, and copy from and to the
  // host or within the device. Copies are synchronous.
  virtual void* alloc(size_t bytes) = 0;
  virtual void release(void* p) = 0;
  virtual void zero(void* p, size_t bytes) = 0;
  virtual void upload(void* dst, const void* host, size_t bytes) = 0;
  virtual void download(void* host, const void* src, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;
  // A weight or vector on this device, made from host memory: the CPU returns the same view, other devices a
  // copy that lives as long as the backend. The error names the tensor and the bytes asked for.
  virtual Result<Weight> place(const Weight& host, std::string_view name) = 0;
  virtual Result<Vector> place(const Vector& host, std::string_view name) = 0;

  // At load, once for all layers: rearrange what the backend's kernels read faster in another layout, setting
  // each tensor set's `prepared`. Every layer's tensors must be prepared before moe / mla_attend use them.
  virtual void prepare_experts(std::span<ExpertTensors* const> layers) = 0;
  virtual void prepare_latent(std::span<LatentProjections* const> layers) = 0;
  virtual uint64_t prepared_bytes() const = 0;  // memory the rearranged copies take

  // Rows are float32 activations, `ld` floats apart; n is the number of tokens.
  // y[t] = row batch[t].token of the table, as float32.
  virtual void embed(const Weight& table, const BatchToken* batch, int n, float* y, int64_t ldy) = 0;
  // y[t] = x[t] / sqrt(mean(x[t]^2) + eps) * w over w.n values; y may be x.
  virtual void rms_norm(const float* x, int64_t ldx, const Vector& w, float eps, int n, float* y,
                        int64_t ldy) = 0;
  // y[t][r] = sum_c W[r][c] * x[t][c].
  virtual void matmul(const Weight& w, const float* x, int64_t ldx, int n, float* y, int64_t ldy) = 0;
  // Rotates n_heads vectors of cfg.dims values, head_stride apart, in each token's row to its position.
  virtual void rope(const RopeConfig& cfg, float* x, int64_t ldx, int n_heads, int64_t head_stride,
                    const BatchToken* batch, int n) = 0;
  // gate[i] = silu(gate[i]) * up[i] for i < count.
  virtual void silu_mul(float* gate, const float* up, int64_t count) = 0;
  // y[i] += a[i] (+ b[i], summed first when b is given) for i < count.
  virtual void add(float* y, const float* a, const float* b, int64_t count) = 0;
  // Per token: router logits[n_expert] in, ids[k] (distinct) and weights[k] out.
  virtual void route(const RoutingConfig& cfg, const float* logits, int n, int32_t* ids, float* weights) = 0;
  // y[t] = sum_j weights[t*k+j] * expert_{ids[t*k+j]}(x[t]) with expert(x) = down(silu(gate x) * up x).
  virtual void moe(const ExpertTensors& e, const float* x, int n, const int32_t* ids, const float* weights,
                   int k, float* y, MoeDownInputs* down_inputs) = 0;
  // Writes each token's cache row (rows[t], kv.pages->width() values) at its sequence and position.
  virtual void kv_store(const KvView& kv, int layer, const BatchToken* batch, int n, const float* rows,
                        int64_t ld) = 0;
  // out[t] = the attention outputs of every head for token t (q_pe already rotated, its own row already in
  // the cache), each over its sequence's positions [0, pos]. `mode` chooses the form (kAuto: the cheaper per
  // sequence). With `latents`, every head's o_lat is stored there too (n_head * kv_lora floats per token),
  // which only the absorbed form makes: pass kAbsorbed with it.
  virtual void mla_attend(const MlaShape& s, const LatentProjections& p, const float* q,
                          const BatchToken* batch, int n, const KvView& kv, int layer, AttentionMode mode,
                          float* out, float* latents) = 0;
};

}  // namespace onecard::backend
