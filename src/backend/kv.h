// The MLA KV cache as backends read and write it: per layer and position only the normalised latent c
// (kv_lora values) followed by the rotated shared key k_pe (qk_rope values), in float32 or bfloat16; 576
// values per token and layer on V3. Rows live in fixed-size pages: a page holds `page_tokens` consecutive
// positions of one sequence for every layer, and a sequence's page table lists its pages in position order.
// Which page a sequence gets, and sharing pages between sequences with the same prefix, is the runtime's
// business (runtime/kv_pool.h); ops only read and write rows through a KvView.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace onecard::backend {

class Backend;

enum class KvType { kF32, kBF16 };

// One token of a forward batch. Tokens of the same sequence must come in increasing positions, and every
// position below a token's must already be in the cache or earlier in the batch.
struct BatchToken {
  int32_t token = 0;
  int32_t pos = 0;
  int32_t seq = 0;
  bool logits = false;
};

std::string_view kv_type_name(KvType t);
Result<KvType> kv_type_from_name(std::string_view name);

// The storage: n_pages pages, laid out [layer][page][slot][width] so that one layer's pages lie together, in
// host memory or, with a backend, in its device's memory (zeroed either way). Throws std::bad_alloc when the
// memory cannot be had.
class KvPages {
 public:
  KvPages(int n_layer, int width, int page_tokens, int n_pages, KvType type, Backend* on = nullptr);
  ~KvPages();
  KvPages(KvPages&& other) noexcept;
  KvPages(const KvPages&) = delete;
  KvPages& operator=(const KvPages&) = delete;
  KvPages& operator=(KvPages&&) = delete;

  int n_layer() const { return n_layer_; }
  int n_pages() const { return n_pages_; }
  int page_tokens() const { return page_tokens_; }
  int width() const { return width_; }
  KvType type() const { return type_; }
  size_t bytes() const { return bytes_; }
  size_t page_bytes() const { return page_row_bytes_ * static_cast<size_t>(n_layer_); }  // all layers

  Backend* backend() const { return on_; }  // null: host memory
  // The page's rows of one layer: page_tokens() rows of width() values of the cache's type, in the memory of
  // the pages' device.
  const void* page(int layer, int page) const { return data_ + offset(layer, page, 0); }
  // Writes one row given in host memory, converted to the cache's type.
  void store(int layer, int page, int slot, const float* row);
  // Copies the first `rows` rows of every layer of page `src` to page `dst`.
  void copy_rows(int src, int dst, int rows);

 private:
  size_t offset(int layer, int page, int slot) const {
    return (static_cast<size_t>(layer) * n_pages_ + page) * page_row_bytes_ +
           static_cast<size_t>(slot) * width_ * elem_;
  }

  int n_layer_, n_pages_, page_tokens_, width_;
  KvType type_;
  size_t elem_, page_row_bytes_, bytes_;
  Backend* on_;
  uint8_t* data_;
};

// What one forward step sees: the pages, and for each sequence id of the batch its page table.
struct KvView {
  KvPages* pages = nullptr;
  std::vector<std::span<const int32_t>> tables;  // by BatchToken::seq

  int capacity(int seq) const { return static_cast<int>(tables[seq].size()) * pages->page_tokens(); }
  void store(int layer, int seq, int pos, const float* row) const {
    const int p = pages->page_tokens();
    pages->store(layer, tables[seq][pos / p], pos % p, row);
  }
};

}  // namespace onecard::backend
