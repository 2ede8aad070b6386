// Repacking a layer's experts at load (packed.h), for the formats whose kernel table has a packer.
#include "cpu/kernels.h"
#include "cpu/moe.h"

namespace onecard::cpu {
namespace {

size_t packed_bytes(const Matrix& m, int64_t n_expert, const KernelTable& k) {
  if (!k.packed[m.type]) return 0;
  const size_t bytes = static_cast<size_t>(n_expert) * PackedMatrix{m.type, m.rows, m.cols, nullptr}.bytes();
  return (bytes + 63) / 64 * 64;
}

}  // namespace

size_t packed_experts_bytes(const ExpertWeights& w, const KernelTable& k) {
  return packed_bytes(w.gate, w.n_expert, k) + packed_bytes(w.up, w.n_expert, k) +
         packed_bytes(w.down, w.n_expert, k);
}

size_t packed_experts_bytes(const ExpertWeights& w) {
  return packed_experts_bytes(w, active_kernels());
}

PackedBuffer pack_experts(ExpertWeights& w, ThreadPool& pool) {
  return pack_experts(w, pool, active_kernels());
}

PackedBuffer pack_experts(ExpertWeights& w, ThreadPool& pool, const KernelTable& k) {
  Matrix* mats[3] = {&w.gate, &w.up, &w.down};
  PackedMatrix* views[3] = {&w.gate_packed, &w.up_packed, &w.down_packed};
  const size_t total = packed_experts_bytes(w, k);
  if (total == 0) return {};
  PackedBuffer buf = allocate_packed(total);
  if (buf.data == nullptr) return {};
  size_t at = 0;
  for (int i = 0; i < 3; ++i) {
    const size_t bytes = packed_bytes(*mats[i], w.n_expert, k);
    if (bytes == 0) continue;
    uint8_t* out = buf.data.get() + at;
    const auto pack = k.packed[mats[i]->type].pack;
    pool.parallel_for(w.n_expert, [&](int64_t e, int) { pack(*mats[i], e, e + 1, out); });
    *views[i] = PackedMatrix{mats[i]->type, mats[i]->rows, mats[i]->cols, out};
    at += bytes;
  }
  return buf;
}

}  // namespace onecard::cpu
