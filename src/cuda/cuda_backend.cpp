#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/format.h"
#include "cuda/backend.h"
#include "cuda/kernels.h"

namespace onecard::cuda {
namespace {

using backend::BatchToken;
using backend::KvView;

// A failed launch or copy leaves the card's state unknown: there is nothing to continue with.
void check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return;
  std::fprintf(stderr, "onecard: CUDA error in %s: %s\n", what, cudaGetErrorString(err));
  std::abort();
}

// Device memory that grows to the largest size asked for.
class Scratch {
 public:
  ~Scratch() { cudaFree(p_); }
  template <class T>
  T* get(size_t count) {
    const size_t bytes = count * sizeof(T);
    if (bytes > bytes_) {
      check(cudaFree(p_), "cudaFree");
      check(cudaMalloc(&p_, bytes), "cudaMalloc (scratch)");
      bytes_ = bytes;
    }
    return static_cast<T*>(p_);
  }

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

kernels::DeviceMatrix device_matrix(const backend::Weight& w) {
  return {w.type, w.data, w.row_bytes, w.matrix_bytes(), w.rows, w.cols};
}

struct Latent {
  void* uk = nullptr;  // per-head pointer arrays on the device
  void* uv = nullptr;
};

class CudaBackend final : public backend::Backend {
 public:
  CudaBackend(int device, std::string name) : device_(device), name_(std::move(name)) {
    check(cudaSetDevice(device_), "cudaSetDevice");
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  }
  ~CudaBackend() override {
    cudaStreamSynchronize(stream_);
    for (void* p : owned_) cudaFree(p);
    for (Latent& l : latent_) {
      cudaFree(l.uk);
      cudaFree(l.uv);
    }
    cudaStreamDestroy(stream_);
  }

  backend::Device device() const override { return {backend::DeviceKind::kCuda, device_}; }
  std::string name() const override { return name_; }

  void* alloc(size_t bytes) override {
    void* p = nullptr;
    if (cudaMalloc(&p, bytes > 0 ? bytes : 1) != cudaSuccess) {
      cudaGetLastError();
      return nullptr;
    }
    return p;
  }
  void release(void* p) override { check(cudaFree(p), "cudaFree"); }
  void zero(void* p, size_t bytes) override {
    check(cudaMemsetAsync(p, 0, bytes, stream_), "cudaMemset");
    sync();
  }
  void upload(void* dst, const void* host, size_t bytes) override {
    check(cudaMemcpyAsync(dst, host, bytes, cudaMemcpyHostToDevice, stream_), "upload");
    sync();
  }
  void download(void* host, const void* src, size_t bytes) override {
    check(cudaMemcpyAsync(host, src, bytes, cudaMemcpyDeviceToHost, stream_), "download");
    sync();
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_), "copy");
  }

  Result<backend::Weight> place(const backend::Weight& host, std::string_view name) override {
    if (!kernels::format_supported(host.type)) {
      return make_error("tensor '{}': the CUDA backend has no kernels for {}", name,
                        gguf::type_name(host.type));
    }
    if (host.cols % 8 != 0) {
      return make_error("tensor '{}': {} columns; the CUDA kernels need a multiple of 8", name, host.cols);
    }
    const size_t bytes = host.matrix_bytes() * static_cast<size_t>(host.n_mat);
    void* p = alloc(bytes);
    if (p == nullptr) return out_of_memory(name, bytes);
    owned_.push_back(p);
    upload(p, host.data, bytes);
    backend::Weight w = host;
    w.data = static_cast<const uint8_t*>(p);
    w.device = device();
    return w;
  }

  Result<backend::Vector> place(const backend::Vector& host, std::string_view name) override {
    const size_t bytes = static_cast<size_t>(host.n) * sizeof(float);
    void* p = alloc(bytes);
    if (p == nullptr) return out_of_memory(name, bytes);
    owned_.push_back(p);
    upload(p, host.data, bytes);
    return backend::Vector{static_cast<const float*>(p), host.n, device()};
  }

  void prepare_experts(std::span<backend::ExpertTensors* const>) override {}

  void prepare_latent(std::span<backend::LatentProjections* const> layers) override {
    for (backend::LatentProjections* p : layers) {
      Latent& l = latent_.emplace_back();
      std::vector<const uint8_t*> uk, uv;
      for (const backend::Weight& w : p->uk) uk.push_back(w.data);
      for (const backend::Weight& w : p->uv) uv.push_back(w.data);
      check(cudaMalloc(&l.uk, uk.size() * sizeof(void*)), "cudaMalloc (latent)");
      check(cudaMalloc(&l.uv, uv.size() * sizeof(void*)), "cudaMalloc (latent)");
      upload(l.uk, uk.data(), uk.size() * sizeof(void*));
      upload(l.uv, uv.data(), uv.size() * sizeof(void*));
      p->prepared = &l;
    }
  }

  uint64_t prepared_bytes() const override { return 0; }

  void embed(const backend::Weight& table, const BatchToken* batch, int n, float* y, int64_t ldy) override {
    std::vector<int32_t> tokens(static_cast<size_t>(n));
    for (int t = 0; t < n; ++t) tokens[t] = batch[t].token;
    int32_t* dev = to_device(tokens, tokens_);
    kernels::embed(device_matrix(table), dev, n, y, ldy, stream_);
    launched("embed");
  }

  void rms_norm(const float* x, int64_t ldx, const backend::Vector& w, float eps, int n, float* y,
                int64_t ldy) override {
    kernels::rms_norm(x, ldx, w.data, w.n, eps, n, y, ldy, stream_);
    launched("rms_norm");
  }

  void matmul(const backend::Weight& w, const float* x, int64_t ldx, int n, float* y, int64_t ldy) override {
    kernels::matmul(device_matrix(w), x, ldx, n, y, ldy, stream_);
    launched("matmul");
  }

  void rope(const backend::RopeConfig& cfg, float* x, int64_t ldx, int n_heads, int64_t head_stride,
            const BatchToken* batch, int n) override {
    if (!(cfg == rope_cfg_) || rope_freqs_ == nullptr) {
      const std::vector<float> freqs = backend::rope_frequencies(cfg);
      rope_freqs_ = freqs_.get<float>(freqs.size());
      upload(rope_freqs_, freqs.data(), freqs.size() * sizeof(float));
      rope_cfg_ = cfg;
    }
    std::vector<int32_t> positions(static_cast<size_t>(n));
    for (int t = 0; t < n; ++t) positions[t] = batch[t].pos;
    int32_t* dev = to_device(positions, positions_);
    kernels::rope(rope_freqs_, cfg.dims / 2, x, ldx, n_heads, head_stride, dev, n, stream_);
    launched("rope");
  }

  void silu_mul(float* gate, const float* up, int64_t count) override {
    kernels::silu_mul(gate, up, count, stream_);
    launched("silu_mul");
  }

  void add(float* y, const float* a, const float* b, int64_t count) override {
    kernels::add(y, a, b, count, stream_);
    launched("add");
  }

  void route(const backend::RoutingConfig& cfg, const float* logits, int n, int32_t* ids,
             float* weights) override {
    const kernels::RouteParams p{
        cfg.n_expert,  cfg.k,     cfg.n_group, cfg.n_group_used, cfg.gating == backend::Gating::kSigmoid,
        cfg.normalize, cfg.scale, cfg.bias};
    kernels::route(p, logits, n, ids, weights, stream_);
    launched("route");
  }

  void moe(const backend::ExpertTensors& e, const float* x, int n, const int32_t* ids, const float* weights,
           int k, float* y, backend::MoeDownInputs* down_inputs) override {
    const size_t pairs = static_cast<size_t>(n) * static_cast<size_t>(k);
    const auto ff = static_cast<size_t>(e.gate.rows), d = static_cast<size_t>(e.down.rows);
    float* h = moe_h_.get<float>(pairs * ff);
    float* u = moe_u_.get<float>(pairs * ff);
    float* out = moe_out_.get<float>(pairs * d);
    kernels::moe(device_matrix(e.gate), device_matrix(e.up), device_matrix(e.down), x, n, ids, weights, k, h,
                 u, out, y, stream_);
    launched("moe");
    if (down_inputs != nullptr) {
      // The observer reads them on the host: pairs are in (token, slot) order here.
      host_h_.resize(pairs * ff);
      download(host_h_.data(), h, host_h_.size() * sizeof(float));
      host_order_.resize(pairs);
      for (size_t i = 0; i < pairs; ++i) host_order_[i] = static_cast<int32_t>(i);
      *down_inputs = {host_h_.data(), host_order_.data()};
    }
  }

  void kv_store(const KvView& kv, int layer, const BatchToken* batch, int n, const float* rows,
                int64_t ld) override {
    const kernels::DeviceKv dkv = device_kv(kv);
    kernels::kv_store(dkv, layer, batch_tokens(batch, n), n, rows, ld, stream_);
    launched("kv_store");
  }

  void mla_attend(const backend::MlaShape& s, const backend::LatentProjections& p, const float* q,
                  const BatchToken* batch, int n, const KvView& kv, int layer, backend::AttentionMode,
                  float* out, float* latents) override {
    const auto* l = static_cast<const Latent*>(p.prepared);
    if (l == nullptr) fail("mla_attend: the layer's projections were not prepared on this backend");
    const kernels::DeviceMla m{static_cast<int>(s.n_head),
                               static_cast<int>(s.nope),
                               static_cast<int>(s.rope),
                               static_cast<int>(s.kv_lora),
                               static_cast<int>(s.v),
                               static_cast<int>(s.width),
                               s.scale,
                               p.uk_transposed,
                               p.uk[0].type,
                               p.uv[0].type,
                               static_cast<const uint8_t* const*>(l->uk),
                               static_cast<const uint8_t* const*>(l->uv),
                               p.uk[0].row_bytes,
                               p.uv[0].row_bytes};
    const kernels::DeviceKv dkv = device_kv(kv);
    kernels::mla_attend(m, q, batch_tokens(batch, n), n, dkv, layer, out, latents, stream_);
    launched("mla_attend");
  }

 private:
  [[noreturn]] static void fail(const char* what) {
    std::fprintf(stderr, "onecard: CUDA backend: %s\n", what);
    std::abort();
  }
  void sync() { check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"); }
  void launched(const char* what) { check(cudaGetLastError(), what); }

  Error out_of_memory(std::string_view name, size_t bytes) const {
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    return make_error("tensor '{}': out of memory on {} allocating {} ({} free of {})", name,
                      backend::device_name(device()), human_bytes(bytes), human_bytes(free_b),
                      human_bytes(total_b));
  }

  template <class T>
  T* to_device(const std::vector<T>& host, Scratch& where) {
    T* dev = where.get<T>(host.size());
    check(cudaMemcpyAsync(dev, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice, stream_),
          "upload");
    return dev;
  }

  // (seq, pos) per batch token.
  const int32_t* batch_tokens(const BatchToken* batch, int n) {
    std::vector<int32_t> pairs(2 * static_cast<size_t>(n));
    for (int t = 0; t < n; ++t) {
      pairs[2 * t] = batch[t].seq;
      pairs[2 * t + 1] = batch[t].pos;
    }
    return to_device(pairs, batch_);
  }

  kernels::DeviceKv device_kv(const KvView& kv) {
    if (kv.pages->backend() != this) fail("the KV cache is not in this card's memory");
    std::vector<int32_t> offsets, tables;
    for (const auto& t : kv.tables) {
      offsets.push_back(static_cast<int32_t>(tables.size()));
      tables.insert(tables.end(), t.begin(), t.end());
    }
    if (tables.empty()) tables.push_back(0);
    if (offsets.empty()) offsets.push_back(0);
    return {const_cast<uint8_t*>(static_cast<const uint8_t*>(kv.pages->page(0, 0))),
            kv.pages->type() == backend::KvType::kBF16,
            kv.pages->n_pages(),
            kv.pages->page_tokens(),
            kv.pages->width(),
            to_device(tables, tables_),
            to_device(offsets, offsets_)};
  }

  int device_;
  std::string name_;
  cudaStream_t stream_ = nullptr;
  std::vector<void*> owned_;
  std::vector<Latent> latent_;
  backend::RopeConfig rope_cfg_;
  float* rope_freqs_ = nullptr;
  Scratch freqs_, tokens_, positions_, batch_, tables_, offsets_, moe_h_, moe_u_, moe_out_;
  std::vector<float> host_h_;
  std::vector<int32_t> host_order_;
};

}  // namespace

Result<std::unique_ptr<backend::Backend>> make_backend(int device) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return make_error("no CUDA device: {}", cudaGetErrorString(err));
  }
  if (device < 0 || device >= count) {
    return make_error("no CUDA device {} (this machine has {})", device, count);
  }
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  return std::unique_ptr<backend::Backend>(new CudaBackend(
      device, fmt::format("cuda{} ({}, sm_{}{})", device, prop.name, prop.major, prop.minor)));
}

}  // namespace onecard::cuda
