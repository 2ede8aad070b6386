// Repacking a layer's Q2_K, Q4_K and Q6_K experts at load (packed.h).
#include "cpu/moe.h"

namespace onecard::cpu {
namespace {

size_t packed_bytes(const Matrix& m, int64_t n_expert) {
  if (!packable(m.type)) return 0;
  const size_t bytes = static_cast<size_t>(n_expert) * PackedMatrix{m.type, m.rows, m.cols, nullptr}.bytes();
  return (bytes + 63) / 64 * 64;
}

}  // namespace

size_t packed_experts_bytes(const ExpertWeights& w) {
  return packed_bytes(w.gate, w.n_expert) + packed_bytes(w.up, w.n_expert) + packed_bytes(w.down, w.n_expert);
}

PackedBuffer pack_experts(ExpertWeights& w, ThreadPool& pool) {
  Matrix* mats[3] = {&w.gate, &w.up, &w.down};
  PackedMatrix* views[3] = {&w.gate_packed, &w.up_packed, &w.down_packed};
  const size_t total = packed_experts_bytes(w);
  if (total == 0) return {};
  PackedBuffer buf = allocate_packed(total);
  if (buf.data == nullptr) return {};
  size_t at = 0;
  for (int i = 0; i < 3; ++i) {
    const size_t bytes = packed_bytes(*mats[i], w.n_expert);
    if (bytes == 0) continue;
    uint8_t* out = buf.data.get() + at;
    pool.parallel_for(w.n_expert, [&](int64_t e, int) { pack_matrix(*mats[i], e, e + 1, out); });
    *views[i] = PackedMatrix{mats[i]->type, mats[i]->rows, mats[i]->cols, out};
    at += bytes;
  }
  return buf;
}

}  // namespace onecard::cpu
