#include "backend/kv.h"

#include <cstring>
#include <new>

#include "base/half.h"

namespace onecard::backend {

std::string_view kv_type_name(KvType t) {
  return t == KvType::kF32 ? "f32" : "bf16";
}

Result<KvType> kv_type_from_name(std::string_view name) {
  if (name == "f32") return KvType::kF32;
  if (name == "bf16") return KvType::kBF16;
  return make_error("KV cache type '{}' is not one of f32, bf16", name);
}

KvPages::KvPages(int n_layer, int width, int page_tokens, int n_pages, KvType type)
    : n_layer_(n_layer),
      n_pages_(n_pages),
      page_tokens_(page_tokens),
      width_(width),
      type_(type),
      elem_(type == KvType::kF32 ? 4 : 2) {
  page_row_bytes_ = static_cast<size_t>(page_tokens_) * width_ * elem_;
  bytes_ = page_row_bytes_ * n_layer_ * n_pages_;
  // calloc: the OS hands out zeroed pages lazily, so memory is touched only where sequences write.
  data_.reset(static_cast<uint8_t*>(std::calloc(bytes_ > 0 ? bytes_ : 1, 1)));
  if (data_ == nullptr) throw std::bad_alloc();
}

void KvPages::store(int layer, int page, int slot, const float* row) {
  uint8_t* dst = data_.get() + offset(layer, page, slot);
  if (type_ == KvType::kF32) {
    std::memcpy(dst, row, static_cast<size_t>(width_) * 4);
    return;
  }
  auto* out = reinterpret_cast<uint16_t*>(dst);
  for (int i = 0; i < width_; ++i) out[i] = fp32_to_bf16(row[i]);
}

void KvPages::copy_rows(int src, int dst, int rows) {
  const size_t n = static_cast<size_t>(rows) * width_ * elem_;
  for (int l = 0; l < n_layer_; ++l) {
    std::memcpy(data_.get() + offset(l, dst, 0), data_.get() + offset(l, src, 0), n);
  }
}

}  // namespace onecard::backend
