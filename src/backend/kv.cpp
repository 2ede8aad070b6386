#include "backend/kv.h"

#include <cstring>
#include <new>

#include "backend/backend.h"
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

KvPages::KvPages(int n_layer, int width, int page_tokens, int n_pages, KvType type, Backend* on)
    : n_layer_(n_layer),
      n_pages_(n_pages),
      page_tokens_(page_tokens),
      width_(width),
      type_(type),
      elem_(type == KvType::kF32 ? 4 : 2),
      on_(on != nullptr && on->device().kind != DeviceKind::kCpu ? on : nullptr) {
  page_row_bytes_ = static_cast<size_t>(page_tokens_) * width_ * elem_;
  bytes_ = page_row_bytes_ * n_layer_ * n_pages_;
  const size_t bytes = bytes_ > 0 ? bytes_ : 1;
  if (on_ == nullptr) {
    // calloc: the OS hands out zeroed pages lazily, so memory is touched only where sequences write.
    data_ = static_cast<uint8_t*>(std::calloc(bytes, 1));
  } else {
    data_ = static_cast<uint8_t*>(on_->alloc(bytes));
    if (data_ != nullptr) on_->zero(data_, bytes);
  }
  if (data_ == nullptr) throw std::bad_alloc();
}

KvPages::KvPages(KvPages&& o) noexcept
    : n_layer_(o.n_layer_),
      n_pages_(o.n_pages_),
      page_tokens_(o.page_tokens_),
      width_(o.width_),
      type_(o.type_),
      elem_(o.elem_),
      page_row_bytes_(o.page_row_bytes_),
      bytes_(o.bytes_),
      on_(o.on_),
      data_(o.data_) {
  o.data_ = nullptr;
}

KvPages::~KvPages() {
  if (data_ == nullptr) return;
  if (on_ == nullptr) {
    std::free(data_);
  } else {
    on_->release(data_);
  }
}

void KvPages::store(int layer, int page, int slot, const float* row) {
  uint8_t* dst = data_ + offset(layer, page, slot);
  if (on_ == nullptr) {
    if (type_ == KvType::kF32) {
      std::memcpy(dst, row, static_cast<size_t>(width_) * 4);
      return;
    }
    auto* out = reinterpret_cast<uint16_t*>(dst);
    for (int i = 0; i < width_; ++i) out[i] = fp32_to_bf16(row[i]);
    return;
  }
  if (type_ == KvType::kF32) {
    on_->upload(dst, row, static_cast<size_t>(width_) * 4);
    return;
  }
  std::vector<uint16_t> converted(static_cast<size_t>(width_));
  for (int i = 0; i < width_; ++i) converted[i] = fp32_to_bf16(row[i]);
  on_->upload(dst, converted.data(), converted.size() * 2);
}

void KvPages::copy_rows(int src, int dst, int rows) {
  const size_t n = static_cast<size_t>(rows) * width_ * elem_;
  for (int l = 0; l < n_layer_; ++l) {
    uint8_t* to = data_ + offset(l, dst, 0);
    const uint8_t* from = data_ + offset(l, src, 0);
    if (on_ == nullptr) {
      std::memcpy(to, from, n);
    } else {
      on_->copy(to, from, n);
    }
  }
}

}  // namespace onecard::backend
