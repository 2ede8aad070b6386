// The model's view of the MLA KV cache (backend/kv.h holds the pages the backends read and write), and a
// cache of fixed sequences for the commands and tests that run the model directly (logits, perplexity)
// rather than through the runtime's scheduler.
#pragma once

#include <vector>

#include "backend/kv.h"
#include "model/hparams.h"

namespace onecard::model {

using backend::BatchToken;
using backend::kv_type_from_name;
using backend::kv_type_name;
using backend::KvPages;
using backend::KvType;
using backend::KvView;

// Pages for this model's cache rows: one row of kv_cache_width() values per decode layer and position, in
// host memory or in the memory of `on` (DeepSeek2::kv_backend()).
KvPages make_kv_pages(const HParams& hp, int page_tokens, int n_pages, KvType type,
                      backend::Backend* on = nullptr);

// Each sequence owns enough consecutive pages for n_ctx positions.
class KvCache {
 public:
  KvCache(const HParams& hp, int n_seq, int n_ctx, KvType type, int page_tokens = 16,
          backend::Backend* on = nullptr);
  KvCache(const KvCache&) = delete;  // the view points into the page tables
  KvCache& operator=(const KvCache&) = delete;

  int n_seq() const { return static_cast<int>(tables_.size()); }
  int n_ctx() const { return n_ctx_; }
  KvType type() const { return pages_.type(); }
  size_t bytes() const { return pages_.bytes(); }
  const KvView& view() const { return view_; }
  void store(int layer, int seq, int pos, const std::vector<float>& row) const {
    view_.store(layer, seq, pos, row.data());
  }

 private:
  KvPages pages_;
  int n_ctx_;
  std::vector<std::vector<int32_t>> tables_;
  KvView view_;
};

}  // namespace onecard::model
