#include "backend/tensor.h"

namespace onecard::backend {

Weight make_weight(gguf::GgmlType type, int64_t cols, int64_t rows, const void* data, int64_t n_mat,
                   Device device) {
  return Weight{type,
                cols,
                rows,
                n_mat,
                static_cast<size_t>(gguf::row_bytes(type, static_cast<uint64_t>(cols))),
                static_cast<const uint8_t*>(data),
                device};
}

}  // namespace onecard::backend
