#include "base/prefault.h"

#include <unistd.h>

#include <fstream>
#include <vector>

#include <gtest/gtest.h>

#include "base/mmap.h"
#include "common/test_paths.h"

namespace onecard {
namespace {

// A file whose byte at each page boundary says which page it is, so the sum of the bytes read shows that
// every page was read once.
struct PagedFile {
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_t pages;
  MappedFile map;
  uint64_t page_byte_sum = 0;

  PagedFile(const std::string& name, size_t n_pages, size_t tail) : pages(n_pages) {
    std::vector<uint8_t> bytes(n_pages * page + tail, 0);
    for (size_t p = 0; p * page < bytes.size(); ++p) {
      bytes[p * page] = static_cast<uint8_t>(p % 251 + 1);
      page_byte_sum += p % 251 + 1;
    }
    const std::string path = test::temp_path(name);
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    map = MappedFile::open(path).value();
  }
};

TEST(Prefault, TouchesEveryPageWithProgress) {
  PagedFile f("prefault.bin", 37, 100);
  ThreadPool pool(2);
  PrefaultOptions o;
  o.chunk_bytes = 4 * f.page;
  std::vector<uint64_t> reports;
  o.progress = [&](uint64_t done) {
    reports.push_back(done);
    return true;
  };
  const PrefaultResult r = prefault(f.map.bytes(), pool, o);
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(r.bytes, f.map.size());
  EXPECT_EQ(r.checksum, f.page_byte_sum);
  ASSERT_FALSE(reports.empty());
  for (size_t i = 1; i < reports.size(); ++i) EXPECT_GE(reports[i], reports[i - 1]);
  EXPECT_EQ(reports.back(), f.map.size());
}

TEST(Prefault, RegionsOffPageBoundariesReadTheirFirstByte) {
  PagedFile f("prefault_offset.bin", 8, 0);
  ThreadPool pool(1);
  // From the middle of page 2 to the middle of page 5: the bytes read are page 2's start-in-region (zero)
  // and the boundaries of pages 3, 4 and 5.
  const auto region = f.map.bytes().subspan(2 * f.page + 10, 3 * f.page);
  const PrefaultResult r = prefault(region, pool, PrefaultOptions{});
  EXPECT_EQ(r.bytes, region.size());
  EXPECT_EQ(r.checksum, 4u + 5u + 6u);
}

TEST(Prefault, ProgressReturningFalseStops) {
  PagedFile f("prefault_stop.bin", 16, 0);
  ThreadPool pool(1);
  PrefaultOptions o;
  o.chunk_bytes = f.page;
  int calls = 0;
  o.progress = [&](uint64_t) { return ++calls < 3; };
  const PrefaultResult r = prefault(f.map.bytes(), pool, o);
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(r.bytes, 3 * f.page);
}

TEST(Prefault, EachThreadIsSetUpOnce) {
  PagedFile f("prefault_threads.bin", 32, 0);
  ThreadPool pool(2);
  PrefaultOptions o;
  o.chunk_bytes = f.page;
  std::vector<int> setups(2, 0);
  o.on_thread = [&](int thread) { ++setups[static_cast<size_t>(thread)]; };
  EXPECT_EQ(prefault(f.map.bytes(), pool, o).checksum, f.page_byte_sum);
  EXPECT_LE(setups[0], 1);
  EXPECT_LE(setups[1], 1);
  EXPECT_GE(setups[0] + setups[1], 1);
}

}  // namespace
}  // namespace onecard
