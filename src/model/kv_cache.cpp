#include "model/kv_cache.h"

namespace onecard::model {

KvPages make_kv_pages(const HParams& hp, int page_tokens, int n_pages, KvType type, backend::Backend* on) {
  return KvPages(static_cast<int>(hp.n_layer_decode()), static_cast<int>(hp.kv_cache_width()), page_tokens,
                 n_pages, type, on);
}

KvCache::KvCache(const HParams& hp, int n_seq, int n_ctx, KvType type, int page_tokens, backend::Backend* on)
    : pages_(make_kv_pages(hp, page_tokens, n_seq * ((n_ctx + page_tokens - 1) / page_tokens), type, on)),
      n_ctx_(n_ctx) {
  const int per_seq = (n_ctx + page_tokens - 1) / page_tokens;
  tables_.resize(static_cast<size_t>(n_seq));
  view_.pages = &pages_;
  for (int s = 0; s < n_seq; ++s) {
    for (int p = 0; p < per_seq; ++p) tables_[s].push_back(s * per_seq + p);
    view_.tables.emplace_back(tables_[s]);
  }
}

}  // namespace onecard::model
