// The KV cache as one pool of fixed-size pages shared by all sequences, with a prefix cache on top.
//
// A running sequence holds its pages through a page table (reference counts: a page may be in several
// tables). A page that is full, or that a finished sequence leaves behind, is published: indexed by the hash
// of every token from position 0 to its end, so that a later sequence whose prompt starts with the same
// tokens (a multi-turn chat re-sending its history, agents sharing a system prompt) shares the full pages and
// copies the rows of a partly matching one instead of evaluating them again. Published pages that no sequence
// holds stay cached until a new page is needed and none is free; then the least recently used goes first.
#pragma once

#include <cstdint>
#include <list>
#include <span>
#include <unordered_map>
#include <vector>

#include "model/kv_cache.h"

namespace onecard::runtime {

class KvPool {
 public:
  static constexpr uint64_t kRootHash = 0x6f6e6563617264ull;  // the hash "before" position 0

  // The pages in host memory, or in the memory of `on` (the model's kv_backend()).
  KvPool(const model::HParams& hp, int page_tokens, int n_pages, model::KvType type,
         backend::Backend* on = nullptr);

  model::KvPages& pages() { return pages_; }
  int page_tokens() const { return pages_.page_tokens(); }
  int n_pages() const { return pages_.n_pages(); }
  int n_free() const { return static_cast<int>(free_.size()); }  // holding nothing
  int n_idle() const { return static_cast<int>(lru_.size()); }   // cached, held by no sequence
  int n_available() const { return n_free() + n_idle(); }
  int n_used() const { return n_pages() - n_available(); }  // held by sequences

  // A page for a sequence to write, held once: a free one, else the least recently used idle one (which
  // leaves the cache). -1 when every page is held.
  int32_t allocate();
  // The sequence drops its hold on the page.
  void release(int32_t page);

  struct Match {
    std::vector<int32_t> pages;  // held once each by the caller
    int tokens = 0;              // positions they hold, from 0
  };
  // The longest cached prefix of `tokens`, at most `max_tokens` of them: full pages are shared; the first
  // page that matches only in part is copied (its matching rows) into a new page of the caller's.
  Match match(std::span<const int32_t> tokens, int max_tokens);

  // Makes a page of a sequence findable: it holds `tokens` (1..page_tokens of them, positions following the
  // page whose hash is `parent`, kRootHash for the first page) and will not be written again. Returns the
  // page's hash, the parent of the next page.
  uint64_t publish(int32_t page, uint64_t parent, std::span<const int32_t> tokens);

  static uint64_t chain_hash(uint64_t parent, std::span<const int32_t> tokens);

 private:
  struct Page {
    int32_t holders = 0;
    bool cached = false;
    uint64_t parent = 0, hash = 0;
    std::vector<int32_t> tokens;  // when cached
    std::list<int32_t>::iterator idle;
  };
  void hold(int32_t page);
  void uncache(int32_t page);

  model::KvPages pages_;
  std::vector<Page> meta_;
  std::vector<int32_t> free_;
  std::list<int32_t> lru_;  // idle cached pages, least recently used first
  std::unordered_map<uint64_t, std::vector<int32_t>> children_;  // cached pages by their parent's hash
};

}  // namespace onecard::runtime
