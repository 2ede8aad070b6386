#include "model/kv_cache.h"

#include <cstring>

#include "base/half.h"

namespace onecard::model {

std::string_view kv_type_name(KvType t) {
  return t == KvType::kF32 ? "f32" : "bf16";
}

Result<KvType> kv_type_from_name(std::string_view name) {
  if (name == "f32") return KvType::kF32;
  if (name == "bf16") return KvType::kBF16;
  return make_error("KV cache type '{}' is not one of f32, bf16", name);
}

KvCache::KvCache(const HParams& hp, int n_seq, int n_ctx, KvType type)
    : n_layer_(static_cast<int>(hp.n_layer_decode())),
      n_seq_(n_seq),
      n_ctx_(n_ctx),
      width_(static_cast<int>(hp.kv_cache_width())),
      type_(type),
      elem_(type == KvType::kF32 ? 4 : 2) {
  bytes_ = static_cast<size_t>(n_layer_) * n_seq_ * n_ctx_ * width_ * elem_;
  // Value-initialised: pages the OS maps lazily stay untouched until a sequence reaches them.
  data_ = std::make_unique<uint8_t[]>(bytes_);
}

size_t KvCache::offset(int layer, int seq, int pos) const {
  return ((static_cast<size_t>(layer) * n_seq_ + seq) * n_ctx_ + pos) * width_ * elem_;
}

void KvCache::store(int layer, int seq, int pos, const float* row) {
  uint8_t* dst = data_.get() + offset(layer, seq, pos);
  if (type_ == KvType::kF32) {
    std::memcpy(dst, row, static_cast<size_t>(width_) * 4);
    return;
  }
  auto* out = reinterpret_cast<uint16_t*>(dst);
  for (int i = 0; i < width_; ++i) out[i] = fp32_to_bf16(row[i]);
}

}  // namespace onecard::model
