// The DeepSeek-V2/V3/R1 forward pass: a batch of tokens, each of some sequence at some position, in; logits
// of the tokens that ask for them out. Every op goes through a backend (backend/backend.h); all of them run
// on the CPU backend today. Weights stay in the mapped file; every working buffer is allocated at load.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/placement.h"
#include "base/result.h"
#include "gguf/file.h"
#include "model/activation_observer.h"
#include "model/hparams.h"
#include "model/kv_cache.h"
#include "model/weights.h"

namespace onecard::cpu {
class CpuBackend;
}

namespace onecard::model {

using backend::attention_mode_name;
using backend::AttentionMode;

struct LoadOptions {
  int n_ctx = 4096;   // positions per sequence (capped at the model's training context when it has one)
  int n_batch = 512;  // tokens per forward step; larger batches are processed in steps of this size
  int n_threads = 0;  // 0: one per physical core (base/placement.h)
  AttentionMode attention = AttentionMode::kAuto;  // kAuto picks the cheaper form per sequence and step
  // Q2_K, Q4_K and Q6_K experts are repacked at load for the AVX-512 VNNI and AVX2 kernels (cpu/packed.h)
  // when they fit in the memory available; otherwise, or with false, the kernels read the mapped file's
  // layout.
  bool repack_experts = true;
  PlacementOptions placement;  // threads on NUMA nodes, huge pages, pre-faulting, experts interleaved
  // The device of each tensor, by GGUF name (the runtime's placement plan decides); unset: all on the CPU.
  // A layer's attention tensors share one device, as do its dense FFN, its router with its shared experts,
  // and its routed experts; every layer's attention (and so the KV cache) is on the same device.
  std::function<backend::Device(std::string_view tensor)> device_of;
  // Makes the backend of the GPU that device_of names; unset: the CUDA backend. Tests give a stand-in.
  std::function<Result<std::unique_ptr<backend::Backend>>(backend::Device)> make_gpu;
};

class DeepSeek2 {
 public:
  static Result<std::unique_ptr<DeepSeek2>> load(const std::string& path, const LoadOptions& options);
  ~DeepSeek2();

  const HParams& hparams() const { return hp_; }
  const gguf::File& file() const { return file_; }
  int n_ctx() const { return n_ctx_; }
  int n_batch() const { return n_batch_; }
  int n_threads() const;
  uint64_t repacked_bytes() const;  // experts repacked at load (LoadOptions)
  // The backend whose memory the KV cache must be in: null for the host (KvCache, KvPool take it).
  backend::Backend* kv_backend() const;
  // "cpu", or which phases run on which device ("attention, router, shared experts, dense FFN, output head
  // on cuda0; routed experts on cpu").
  std::string placement_summary() const;

  // Runs the batch over the cache rows `kv` maps each sequence to (writing the batch's own rows there);
  // `logits` receives n_vocab floats per token with `logits` set, in batch order.
  Status forward(const std::vector<BatchToken>& batch, const KvView& kv, std::vector<float>& logits);
  Status forward(const std::vector<BatchToken>& batch, const KvCache& kv, std::vector<float>& logits) {
    return forward(batch, kv.view(), logits);
  }

  // Reports every weight matrix's input to `observer` (null: none, the default) during later forward calls.
  // Files with attn_k_b/attn_v_b then always take the absorbed attention, whose o_lat is attn_v_b's input.
  // Fails for a model with tensors on a GPU, whose activations the observer cannot read.
  Status set_observer(ActivationObserver* observer);

 private:
  DeepSeek2(gguf::File file, HParams hp, Weights w, const LoadOptions& o);
  struct Acts;
  struct LayerDevices {
    backend::Backend *attention, *ffn, *experts;  // ffn: the dense FFN, or the router and shared experts
  };
  Status place_on_devices(const LoadOptions& o);
  Acts& acts(backend::Backend* be);
  void forward_step(const BatchToken* batch, int n, const KvView& kv, float* logits);
  void attention(int il, const BatchToken* batch, int n, const KvView& kv);
  void feed_forward(int il, int n);
  void observe(int il, const char* weight, const float* x, int64_t rows, int64_t cols, int64_t stride,
               int64_t n_mat = 1, const int32_t* mats = nullptr, int mats_per_row = 0);

  gguf::File file_;
  HParams hp_;
  Weights w_;
  int n_ctx_;
  std::unique_ptr<cpu::CpuBackend> cpu_;
  std::unique_ptr<backend::Backend> gpu_;  // only when some tensor is placed on one
  backend::Backend* main_ = nullptr;       // the attention's: the residual stream and the KV cache live there
  backend::Backend* embed_ = nullptr;
  backend::Backend* output_ = nullptr;
  std::vector<LayerDevices> layer_devices_;
  int n_batch_;
  AttentionMode attention_mode_;
  ActivationObserver* observer_ = nullptr;
  struct Buffers;
  std::unique_ptr<Buffers> buf_;
  std::unique_ptr<Acts> gpu_acts_;
};

}  // namespace onecard::model
