// Weights as the model hands them to a backend: where they lie, in which format and shape, and the owning
// backend's private state for them (a layout rearranged at load), which no one else reads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "backend/device.h"
#include "gguf/types.h"

namespace onecard::backend {

// `rows` rows of `cols` elements in one ggml block format at a fixed byte stride, on `device`; a vector
// (a norm's weights, a bias) is one row. Expert tensors are `n_mat` such matrices one after another.
struct Weight {
  gguf::GgmlType type = gguf::GgmlType::F32;
  int64_t cols = 0;  // ne0: the input dimension, contiguous
  int64_t rows = 0;  // ne1: outputs
  int64_t n_mat = 1;
  size_t row_bytes = 0;
  const uint8_t* data = nullptr;
  Device device = kCpu;

  explicit operator bool() const { return data != nullptr; }
  const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes; }
  size_t matrix_bytes() const { return static_cast<size_t>(rows) * row_bytes; }
  // Rows [first, first + count) of matrix 0, as a weight of its own.
  Weight row_range(int64_t first, int64_t count) const {
    Weight w = *this;
    w.data = row(first);
    w.rows = count;
    w.n_mat = 1;
    return w;
  }
};

Weight make_weight(gguf::GgmlType type, int64_t cols, int64_t rows, const void* data, int64_t n_mat = 1,
                   Device device = kCpu);

// A float32 vector on a device (norm weights, the router's selection bias); null when absent.
struct Vector {
  const float* data = nullptr;
  int64_t n = 0;
  Device device = kCpu;

  explicit operator bool() const { return data != nullptr; }
};

// The routed experts of a MoE layer: gate and up [d -> ff], down [ff -> d], n_mat = the expert count.
// `prepared` is set by the backend that rearranged them (Backend::prepare_experts), which alone reads it.
struct ExpertTensors {
  Weight gate, up, down;
  const void* prepared = nullptr;
};

// The per-head up-projections of the latent that attention uses, as the file gives them: W_UK (q_lat =
// W_UK^T q_nope) and W_UV (out = W_UV o_lat). Combined files give W_UK as qk_nope rows of kv_lora (multiplied
// transposed), split files as kv_lora rows of qk_nope. `prepared`: as for ExpertTensors.
struct LatentProjections {
  std::vector<Weight> uk, uv;
  bool uk_transposed = false;
  const void* prepared = nullptr;
};

}  // namespace onecard::backend
