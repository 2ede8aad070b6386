#include "runtime/kv_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "common/random_data.h"
#include "common/test_paths.h"
#include "gguf/file.h"
#include "model/hparams.h"

namespace onecard::runtime {
namespace {

constexpr int kPage = 4;  // positions per page in these tests

class KvPoolTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto file = gguf::File::open(test::golden_dir() + "/models/tiny-v3-f32.gguf");
    ASSERT_TRUE(file.ok()) << file.error().message();
    auto hp = model::read_hparams(file.value());
    ASSERT_TRUE(hp.ok()) << hp.error().message();
    hp_ = new model::HParams(hp.value());
  }
  static void TearDownTestSuite() {
    delete hp_;
    hp_ = nullptr;
  }

  static const model::HParams& hp() { return *hp_; }

  static size_t elem_bytes(model::KvType t) { return t == model::KvType::kF32 ? 4 : 2; }

  // Random non-zero rows in every slot of every layer of the page.
  static void fill(KvPool& pool, int32_t page, uint64_t seed) {
    model::KvPages& pages = pool.pages();
    for (int l = 0; l < pages.n_layer(); ++l) {
      for (int slot = 0; slot < pages.page_tokens(); ++slot) {
        const auto row = test::nonzero_gaussian(
            pages.width(), seed,
            "page" + std::to_string(page) + "/" + std::to_string(l) + "/" + std::to_string(slot));
        pages.store(l, page, slot, row.data());
      }
    }
  }

  // Whether the first `rows` rows of every layer of the two pages are the same bytes.
  static bool same_rows(KvPool& pool, int32_t a, int32_t b, int rows) {
    model::KvPages& pages = pool.pages();
    const size_t n = static_cast<size_t>(rows) * pages.width() * elem_bytes(pages.type());
    for (int l = 0; l < pages.n_layer(); ++l) {
      if (std::memcmp(pages.page(l, a), pages.page(l, b), n) != 0) return false;
    }
    return true;
  }

  static void expect_counts_add_up(const KvPool& pool) {
    EXPECT_EQ(pool.n_free() + pool.n_idle() + pool.n_used(), pool.n_pages());
    EXPECT_GE(pool.n_free(), 0);
    EXPECT_GE(pool.n_idle(), 0);
    EXPECT_GE(pool.n_used(), 0);
  }

  // Publishes the pages of a sequence holding `tokens` (the last page may be partly filled).
  static void publish_all(KvPool& pool, const std::vector<int32_t>& pages,
                          const std::vector<int32_t>& tokens) {
    uint64_t parent = KvPool::kRootHash;
    for (size_t i = 0; i < pages.size(); ++i) {
      const size_t begin = i * kPage;
      const size_t n = std::min<size_t>(kPage, tokens.size() - begin);
      parent = pool.publish(pages[i], parent, std::span<const int32_t>(tokens.data() + begin, n));
    }
  }

  static std::vector<int32_t> iota_tokens(int n, int32_t first) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) t[i] = first + i;
    return t;
  }

  static model::HParams* hp_;
};

model::HParams* KvPoolTest::hp_ = nullptr;

TEST_F(KvPoolTest, ShapeFollowsTheModel) {
  KvPool pool(hp(), kPage, 5, model::KvType::kF32);
  EXPECT_EQ(pool.page_tokens(), kPage);
  EXPECT_EQ(pool.n_pages(), 5);
  EXPECT_EQ(pool.pages().n_layer(), static_cast<int>(hp().n_layer_decode()));
  EXPECT_EQ(pool.pages().width(), static_cast<int>(hp().kv_cache_width()));
  EXPECT_EQ(pool.n_free(), 5);
  EXPECT_EQ(pool.n_idle(), 0);
  EXPECT_EQ(pool.n_used(), 0);
}

TEST_F(KvPoolTest, AllocatesUntilExhaustedAndReleaseFrees) {
  KvPool pool(hp(), kPage, 5, model::KvType::kF32);
  std::vector<int32_t> got;
  for (int i = 0; i < 5; ++i) {
    const int32_t p = pool.allocate();
    ASSERT_GE(p, 0);
    got.push_back(p);
    EXPECT_EQ(pool.n_used(), i + 1);
    EXPECT_EQ(pool.n_free(), 4 - i);
    expect_counts_add_up(pool);
  }
  // Lowest first, each page once.
  EXPECT_EQ(got, (std::vector<int32_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(pool.allocate(), -1);
  EXPECT_EQ(pool.allocate(), -1);
  expect_counts_add_up(pool);

  pool.release(got[2]);
  EXPECT_EQ(pool.n_free(), 1);
  EXPECT_EQ(pool.n_used(), 4);
  EXPECT_EQ(pool.n_idle(), 0);  // never published: not cached
  expect_counts_add_up(pool);
  EXPECT_EQ(pool.allocate(), got[2]);
  EXPECT_EQ(pool.allocate(), -1);
  for (int32_t p : got) pool.release(p);
  EXPECT_EQ(pool.n_free(), 5);
  EXPECT_EQ(pool.n_used(), 0);
  expect_counts_add_up(pool);
}

TEST_F(KvPoolTest, ChainHashDependsOnParentAndTokens) {
  const std::vector<int32_t> a = {1, 2, 3}, b = {1, 2, 4};
  EXPECT_EQ(KvPool::chain_hash(KvPool::kRootHash, a), KvPool::chain_hash(KvPool::kRootHash, a));
  EXPECT_NE(KvPool::chain_hash(KvPool::kRootHash, a), KvPool::chain_hash(KvPool::kRootHash, b));
  EXPECT_NE(KvPool::chain_hash(KvPool::kRootHash, a), KvPool::chain_hash(KvPool::kRootHash + 1, a));
}

TEST_F(KvPoolTest, PublishedPageHeldBySequenceIsNotIdleUntilReleased) {
  KvPool pool(hp(), kPage, 3, model::KvType::kF32);
  const int32_t p = pool.allocate();
  const auto toks = iota_tokens(kPage, 10);
  pool.publish(p, KvPool::kRootHash, toks);
  EXPECT_EQ(pool.n_used(), 1);
  EXPECT_EQ(pool.n_idle(), 0);
  pool.release(p);
  EXPECT_EQ(pool.n_used(), 0);
  EXPECT_EQ(pool.n_idle(), 1);  // cached, not free
  EXPECT_EQ(pool.n_free(), 2);
  expect_counts_add_up(pool);
}

TEST_F(KvPoolTest, MatchSharesFullPagesAndCopiesThePartialOne) {
  for (model::KvType type : {model::KvType::kF32, model::KvType::kBF16}) {
    SCOPED_TRACE(std::string(model::kv_type_name(type)));
    KvPool pool(hp(), kPage, 8, type);
    // Sequence A: 3 full pages, 12 tokens.
    const auto a_tokens = iota_tokens(3 * kPage, 100);
    std::vector<int32_t> a_pages;
    for (int i = 0; i < 3; ++i) {
      a_pages.push_back(pool.allocate());
      fill(pool, a_pages.back(), 7);
    }
    publish_all(pool, a_pages, a_tokens);
    expect_counts_add_up(pool);

    // B shares 2 full pages and 2 positions of the third, then goes elsewhere.
    std::vector<int32_t> b_tokens(a_tokens.begin(), a_tokens.begin() + 2 * kPage + 2);
    b_tokens.push_back(7);
    b_tokens.push_back(8);
    const int used_before = pool.n_used();
    KvPool::Match m = pool.match(b_tokens, static_cast<int>(b_tokens.size()) - 1);
    EXPECT_EQ(m.tokens, 2 * kPage + 2);
    ASSERT_EQ(m.pages.size(), 3u);
    EXPECT_EQ(m.pages[0], a_pages[0]);
    EXPECT_EQ(m.pages[1], a_pages[1]);
    const int32_t copy = m.pages[2];
    EXPECT_NE(copy, a_pages[2]);
    EXPECT_NE(copy, a_pages[0]);
    EXPECT_NE(copy, a_pages[1]);
    EXPECT_TRUE(same_rows(pool, copy, a_pages[2], 2));
    EXPECT_FALSE(same_rows(pool, copy, a_pages[2], 3));  // only the matching rows were copied
    EXPECT_EQ(pool.n_used(), used_before + 1);           // shared pages count once; the copy is new
    expect_counts_add_up(pool);

    // A lets go: the shared pages stay held by B, A's third page becomes idle.
    for (int32_t p : a_pages) pool.release(p);
    EXPECT_EQ(pool.n_used(), 3);
    EXPECT_EQ(pool.n_idle(), 1);
    expect_counts_add_up(pool);
    // Allocating everything else must not take B's shared pages (only the idle one may go).
    std::vector<int32_t> others;
    for (int32_t p; (p = pool.allocate()) >= 0;) others.push_back(p);
    EXPECT_EQ(others.size(), 5u);
    for (int32_t p : others) {
      EXPECT_NE(p, a_pages[0]);
      EXPECT_NE(p, a_pages[1]);
      EXPECT_NE(p, copy);
    }
    expect_counts_add_up(pool);
    for (int32_t p : others) pool.release(p);
    for (int32_t p : m.pages) pool.release(p);
    EXPECT_EQ(pool.n_used(), 0);
    EXPECT_EQ(pool.n_idle(), 2);  // the shared pages are cached; the copy never was published
    expect_counts_add_up(pool);
  }
}

TEST_F(KvPoolTest, MatchOfAWholePublishedPrefix) {
  KvPool pool(hp(), kPage, 8, model::KvType::kF32);
  const auto toks = iota_tokens(2 * kPage + 3, 50);  // 2 full pages and a tail of 3
  std::vector<int32_t> pages;
  for (int i = 0; i < 3; ++i) {
    pages.push_back(pool.allocate());
    fill(pool, pages.back(), 3);
  }
  publish_all(pool, pages, toks);
  for (int32_t p : pages) pool.release(p);
  EXPECT_EQ(pool.n_idle(), 3);

  // The same tokens and more: everything published matches, the tail page by a copy.
  std::vector<int32_t> longer = toks;
  longer.insert(longer.end(), {1, 2, 3, 4});
  KvPool::Match m = pool.match(longer, static_cast<int>(longer.size()) - 1);
  EXPECT_EQ(m.tokens, 2 * kPage + 3);
  ASSERT_EQ(m.pages.size(), 3u);
  EXPECT_EQ(m.pages[0], pages[0]);
  EXPECT_EQ(m.pages[1], pages[1]);
  EXPECT_NE(m.pages[2], pages[2]);
  EXPECT_TRUE(same_rows(pool, m.pages[2], pages[2], 3));
  EXPECT_EQ(pool.n_idle(), 1);  // the tail's source is idle again
  EXPECT_EQ(pool.n_used(), 3);
  expect_counts_add_up(pool);
  for (int32_t p : m.pages) pool.release(p);
  expect_counts_add_up(pool);
}

TEST_F(KvPoolTest, MaxTokensCapsTheMatch) {
  KvPool pool(hp(), kPage, 8, model::KvType::kF32);
  const auto toks = iota_tokens(3 * kPage, 200);
  std::vector<int32_t> pages;
  for (int i = 0; i < 3; ++i) {
    pages.push_back(pool.allocate());
    fill(pool, pages.back(), 11);
  }
  publish_all(pool, pages, toks);

  {  // Exactly one page: shared, no copy.
    KvPool::Match m = pool.match(toks, kPage);
    EXPECT_EQ(m.tokens, kPage);
    ASSERT_EQ(m.pages.size(), 1u);
    EXPECT_EQ(m.pages[0], pages[0]);
    for (int32_t p : m.pages) pool.release(p);
  }
  {  // A page and a half: the second page is copied in part.
    KvPool::Match m = pool.match(toks, kPage + 2);
    EXPECT_EQ(m.tokens, kPage + 2);
    ASSERT_EQ(m.pages.size(), 2u);
    EXPECT_EQ(m.pages[0], pages[0]);
    EXPECT_NE(m.pages[1], pages[1]);
    EXPECT_TRUE(same_rows(pool, m.pages[1], pages[1], 2));
    for (int32_t p : m.pages) pool.release(p);
  }
  {  // All but the last token (what the engine asks for: one token must be evaluated).
    KvPool::Match m = pool.match(toks, static_cast<int>(toks.size()) - 1);
    EXPECT_EQ(m.tokens, 3 * kPage - 1);
    ASSERT_EQ(m.pages.size(), 3u);
    EXPECT_EQ(m.pages[1], pages[1]);
    EXPECT_TRUE(same_rows(pool, m.pages[2], pages[2], kPage - 1));
    for (int32_t p : m.pages) pool.release(p);
  }
  {  // Nothing asked, nothing matched.
    KvPool::Match m = pool.match(toks, 0);
    EXPECT_EQ(m.tokens, 0);
    EXPECT_TRUE(m.pages.empty());
  }
  EXPECT_EQ(pool.n_used(), 3);  // only A's own holds remain
  expect_counts_add_up(pool);
}

TEST_F(KvPoolTest, ADifferentTokenStopsTheMatch) {
  KvPool pool(hp(), kPage, 8, model::KvType::kF32);
  const auto toks = iota_tokens(3 * kPage, 300);
  std::vector<int32_t> pages;
  for (int i = 0; i < 3; ++i) {
    pages.push_back(pool.allocate());
    fill(pool, pages.back(), 13);
  }
  publish_all(pool, pages, toks);

  {  // In the middle of the second page.
    auto other = toks;
    other[kPage + 1] = 9;
    KvPool::Match m = pool.match(other, static_cast<int>(other.size()) - 1);
    EXPECT_EQ(m.tokens, kPage + 1);
    ASSERT_EQ(m.pages.size(), 2u);
    EXPECT_EQ(m.pages[0], pages[0]);
    EXPECT_NE(m.pages[1], pages[1]);
    EXPECT_TRUE(same_rows(pool, m.pages[1], pages[1], 1));
    for (int32_t p : m.pages) pool.release(p);
  }
  {  // At the start of the second page: the first page only.
    auto other = toks;
    other[kPage] = 9;
    KvPool::Match m = pool.match(other, static_cast<int>(other.size()) - 1);
    EXPECT_EQ(m.tokens, kPage);
    ASSERT_EQ(m.pages.size(), 1u);
    EXPECT_EQ(m.pages[0], pages[0]);
    for (int32_t p : m.pages) pool.release(p);
  }
  {  // The very first token: nothing.
    auto other = toks;
    other[0] = 9;
    KvPool::Match m = pool.match(other, static_cast<int>(other.size()) - 1);
    EXPECT_EQ(m.tokens, 0);
    EXPECT_TRUE(m.pages.empty());
  }
  {  // A later page is not found without the pages before it: the chain hash includes the whole prefix.
    std::vector<int32_t> second(toks.begin() + kPage, toks.end());
    KvPool::Match m = pool.match(second, static_cast<int>(second.size()) - 1);
    EXPECT_EQ(m.tokens, 0);
    EXPECT_TRUE(m.pages.empty());
  }
  EXPECT_EQ(pool.n_used(), 3);
  expect_counts_add_up(pool);
}

TEST_F(KvPoolTest, IdlePagesAreEvictedLeastRecentlyUsedFirst) {
  KvPool pool(hp(), kPage, 4, model::KvType::kF32);
  // Three one-page sequences, finished in the order x, y, z.
  const auto x = iota_tokens(kPage, 10), y = iota_tokens(kPage, 20), z = iota_tokens(kPage, 30);
  int32_t px = -1, py = -1, pz = -1;
  for (auto [toks, page] : {std::pair{&x, &px}, std::pair{&y, &py}, std::pair{&z, &pz}}) {
    *page = pool.allocate();
    ASSERT_GE(*page, 0);
    pool.publish(*page, KvPool::kRootHash, *toks);
  }
  pool.release(px);
  pool.release(py);
  pool.release(pz);
  EXPECT_EQ(pool.n_idle(), 3);
  EXPECT_EQ(pool.n_free(), 1);
  expect_counts_add_up(pool);

  auto matched = [&](const std::vector<int32_t>& toks) {
    KvPool::Match m = pool.match(toks, kPage);
    const int n = m.tokens;
    for (int32_t p : m.pages) pool.release(p);
    return n;
  };

  // The free page goes first, then the least recently used idle one: x.
  const int32_t a = pool.allocate();
  EXPECT_NE(a, px);
  EXPECT_NE(a, py);
  EXPECT_NE(a, pz);
  EXPECT_EQ(pool.n_free(), 0);
  expect_counts_add_up(pool);
  const int32_t b = pool.allocate();
  EXPECT_EQ(b, px);
  EXPECT_EQ(pool.n_idle(), 2);
  expect_counts_add_up(pool);
  EXPECT_EQ(matched(x), 0);  // evicted: no longer found
  EXPECT_EQ(matched(y), kPage);
  EXPECT_EQ(matched(z), kPage);

  // y then z were matched again: y is now the least recent of the two; touch y once more so z goes first.
  EXPECT_EQ(matched(y), kPage);
  const int32_t c = pool.allocate();
  EXPECT_EQ(c, pz);
  EXPECT_EQ(matched(z), 0);
  EXPECT_EQ(matched(y), kPage);
  expect_counts_add_up(pool);

  const int32_t d = pool.allocate();
  EXPECT_EQ(d, py);
  EXPECT_EQ(matched(y), 0);
  EXPECT_EQ(pool.allocate(), -1);  // every page held
  EXPECT_EQ(pool.n_used(), 4);
  expect_counts_add_up(pool);

  // A page that was evicted and written again can be published under its new tokens.
  pool.publish(b, KvPool::kRootHash, z);
  pool.release(b);
  EXPECT_EQ(matched(z), kPage);
  EXPECT_EQ(matched(x), 0);
  for (int32_t p : {a, c, d}) pool.release(p);
  EXPECT_EQ(pool.n_used(), 0);
  expect_counts_add_up(pool);
}

TEST_F(KvPoolTest, HeldCachedPagesAreNeverEvicted) {
  KvPool pool(hp(), kPage, 2, model::KvType::kF32);
  const auto toks = iota_tokens(kPage, 40);
  const int32_t p = pool.allocate();
  pool.publish(p, KvPool::kRootHash, toks);
  pool.release(p);
  KvPool::Match m = pool.match(toks, kPage);  // held again, by a new sequence
  ASSERT_EQ(m.pages.size(), 1u);
  EXPECT_EQ(pool.n_idle(), 0);
  const int32_t q = pool.allocate();
  EXPECT_NE(q, p);
  EXPECT_EQ(pool.allocate(), -1);
  pool.release(q);
  pool.release(m.pages[0]);
  EXPECT_EQ(pool.n_idle(), 1);
  EXPECT_EQ(pool.n_free(), 1);
  expect_counts_add_up(pool);
}

TEST_F(KvPoolTest, PartialMatchWithNoPageLeftMatchesOnlyFullPages) {
  KvPool pool(hp(), kPage, 2, model::KvType::kF32);
  const auto toks = iota_tokens(2 * kPage, 60);
  std::vector<int32_t> pages = {pool.allocate(), pool.allocate()};
  publish_all(pool, pages, toks);
  // Both pages held by their sequence: the partial second page cannot be copied anywhere.
  KvPool::Match m = pool.match(toks, 2 * kPage - 1);
  EXPECT_EQ(m.tokens, kPage);
  ASSERT_EQ(m.pages.size(), 1u);
  EXPECT_EQ(m.pages[0], pages[0]);
  pool.release(m.pages[0]);
  for (int32_t p : pages) pool.release(p);
  EXPECT_EQ(pool.n_idle(), 2);
  expect_counts_add_up(pool);
}

}  // namespace
}  // namespace onecard::runtime
