#include "runtime/kv_pool.h"

#include <algorithm>

namespace onecard::runtime {

KvPool::KvPool(const model::HParams& hp, int page_tokens, int n_pages, model::KvType type,
               backend::Backend* on)
    : pages_(model::make_kv_pages(hp, page_tokens, n_pages, type, on)), meta_(static_cast<size_t>(n_pages)) {
  free_.reserve(static_cast<size_t>(n_pages));
  // Lowest pages first: they are handed out in order, which keeps a lone sequence's pages together.
  for (int32_t p = n_pages - 1; p >= 0; --p) free_.push_back(p);
}

uint64_t KvPool::chain_hash(uint64_t parent, std::span<const int32_t> tokens) {
  // FNV-1a over the parent hash and the token ids, then a final mix so that nearby chains spread out.
  uint64_t h = 0xcbf29ce484222325ull ^ parent;
  for (int32_t t : tokens) {
    for (int b = 0; b < 4; ++b) {
      h ^= (static_cast<uint32_t>(t) >> (8 * b)) & 0xff;
      h *= 0x100000001b3ull;
    }
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

void KvPool::hold(int32_t page) {
  Page& m = meta_[page];
  if (m.holders++ == 0 && m.cached) lru_.erase(m.idle);
}

void KvPool::uncache(int32_t page) {
  Page& m = meta_[page];
  auto it = children_.find(m.parent);
  if (it != children_.end()) {
    std::erase(it->second, page);
    if (it->second.empty()) children_.erase(it);
  }
  m.cached = false;
  m.tokens.clear();
}

int32_t KvPool::allocate() {
  int32_t page = -1;
  if (!free_.empty()) {
    page = free_.back();
    free_.pop_back();
  } else if (!lru_.empty()) {
    page = lru_.front();
    lru_.pop_front();
    uncache(page);
  } else {
    return -1;
  }
  meta_[page].holders = 1;
  return page;
}

void KvPool::release(int32_t page) {
  Page& m = meta_[page];
  if (--m.holders > 0) return;
  if (m.cached) {
    m.idle = lru_.insert(lru_.end(), page);
  } else {
    free_.push_back(page);
  }
}

uint64_t KvPool::publish(int32_t page, uint64_t parent, std::span<const int32_t> tokens) {
  Page& m = meta_[page];
  const uint64_t hash = chain_hash(parent, tokens);
  if (m.cached) return hash;  // shared from the cache: published already
  m.cached = true;
  m.parent = parent;
  m.hash = hash;
  m.tokens.assign(tokens.begin(), tokens.end());
  children_[parent].push_back(page);
  return hash;
}

KvPool::Match KvPool::match(std::span<const int32_t> tokens, int max_tokens) {
  Match out;
  const int p = page_tokens();
  const int limit = std::min(max_tokens, static_cast<int>(tokens.size()));
  uint64_t parent = kRootHash;
  while (out.tokens < limit) {
    auto it = children_.find(parent);
    if (it == children_.end()) break;
    const std::span<const int32_t> want = tokens.subspan(static_cast<size_t>(out.tokens));
    const int room = std::min(p, limit - out.tokens);
    int32_t best = -1, best_len = 0;
    for (int32_t page : it->second) {
      const std::vector<int32_t>& have = meta_[page].tokens;
      const int n = std::min(room, static_cast<int>(have.size()));
      int len = 0;
      while (len < n && have[len] == want[len]) ++len;
      if (len > best_len) best = page, best_len = len;
    }
    if (best < 0) break;
    if (best_len == p) {
      hold(best);
      out.pages.push_back(best);
      out.tokens += p;
      parent = meta_[best].hash;
      continue;
    }
    // A partial match: copy the matching rows; the source is held meanwhile so that allocating cannot evict
    // it.
    hold(best);
    const int32_t copy = allocate();
    if (copy >= 0) {
      pages_.copy_rows(best, copy, best_len);
      out.pages.push_back(copy);
      out.tokens += best_len;
    }
    release(best);
    break;
  }
  return out;
}

}  // namespace onecard::runtime
