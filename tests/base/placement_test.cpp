#include "base/placement.h"

#include <sys/mman.h>
#include <unistd.h>

#include <fstream>
#include <vector>

#include <gtest/gtest.h>

#include "base/hugepages.h"
#include "base/mmap.h"
#include "common/test_paths.h"

namespace onecard {
namespace {

TEST(ThreadChoice, DefaultsToPhysicalCores) {
  CpuTopology t;
  t.cpus = {0, 1, 2, 3};
  t.cores = {{0, 2}, {1, 3}};
  const ThreadChoice c = choose_threads(0, t);
  EXPECT_EQ(c.threads, 2);
  EXPECT_EQ(c.summary, "threads: 2 (physical cores; 4 logical)");
  const ThreadChoice given = choose_threads(3, t);
  EXPECT_EQ(given.threads, 3);
  EXPECT_NE(given.summary.find("(-t;"), std::string::npos);
}

TEST(Hugepages, ReadsTheBracketedSetting) {
  EXPECT_EQ(parse_thp_setting("always [madvise] never\n"), "madvise");
  EXPECT_EQ(parse_thp_setting("[always] madvise never"), "always");
  EXPECT_EQ(parse_thp_setting(""), "");
}

TEST(Hugepages, SumsTheSmapsAreasOfOneMapping) {
  const char* smaps =
      "7f0000000000-7f0000200000 r--p 00000000 fe:01 123 /models/m.gguf\n"
      "Size:               2048 kB\n"
      "Rss:                2048 kB\n"
      "FilePmdMapped:      2048 kB\n"
      "AnonHugePages:         0 kB\n"
      "7f0000200000-7f0000201000 r--p 00200000 fe:01 123 /models/m.gguf\n"
      "Rss:                   4 kB\n"
      "FilePmdMapped:         0 kB\n"
      "7f0000300000-7f0000400000 rw-p 00000000 00:00 0\n"
      "Rss:                1024 kB\n"
      "AnonHugePages:      1024 kB\n";
  const MappingResidency r = parse_smaps(smaps, 0x7f0000000000, 0x7f0000201000);
  EXPECT_EQ(r.areas, 2);
  EXPECT_EQ(r.rss, (2048u + 4u) * 1024);
  EXPECT_EQ(r.file_pmd_mapped, 2048u * 1024);
  EXPECT_EQ(r.anon_huge, 0u);
  EXPECT_EQ(parse_smaps(smaps, 0x1000, 0x2000).areas, 0);
}

TEST(Hugepages, AMisalignedRegionIsAnErrorNamingTheCall) {
  std::vector<uint8_t> buffer(3 * static_cast<size_t>(sysconf(_SC_PAGESIZE)));
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto* odd = reinterpret_cast<const uint8_t*>((reinterpret_cast<uintptr_t>(buffer.data()) | 1));
  ASSERT_NE(reinterpret_cast<uintptr_t>(odd) % page, 0u);
  const Status st = advise_hugepages({odd, page});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("madvise(MADV_HUGEPAGE)"), std::string::npos);
}

class PlaceWeights : public ::testing::Test {
 protected:
  void SetUp() override {
    page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const std::string path = test::temp_path("placed.bin");
    std::ofstream(path, std::ios::binary) << std::string(6 * page_ + 7, 'w');
    map_ = MappedFile::open(path).value();
    experts_ = {map_.bytes().subspan(page_, 2 * page_), map_.bytes().subspan(3 * page_ + 5, page_)};
  }
  size_t page_ = 0;
  MappedFile map_;
  std::vector<std::span<const uint8_t>> experts_;
};

TEST_F(PlaceWeights, MadviseFailuresAreReportedNotFatal) {
  ThreadPool pool(2);
  const auto misaligned = map_.bytes().subspan(1);
  auto r = place_weights(misaligned, experts_, pool, PlacementOptions{}, "placed.bin");
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].find("placed.bin: huge pages not available: madvise(MADV_HUGEPAGE)"),
            std::string::npos);
}

TEST_F(PlaceWeights, PrefaultsAndReportsOnOneNode) {
  ThreadPool pool(2);
  PlacementOptions o;
  o.prefault = true;
  auto r = place_weights(map_.bytes(), experts_, pool, o, "placed.bin");
  ASSERT_TRUE(r.ok()) << r.error().message();
  // On one node (this pool's threads have none) nothing is interleaved.
  bool prefaulted = false;
  for (const std::string& line : r->lines) {
    EXPECT_EQ(line.find("NUMA"), std::string::npos) << line;
    if (line.find("pre-faulted") != std::string::npos) prefaulted = true;
  }
  EXPECT_TRUE(prefaulted);
  EXPECT_NE(residency_summary(map_.bytes()).find("resident"), std::string::npos);
  o.hugepages = false;
  o.prefault = false;
  r = place_weights(map_.bytes(), experts_, pool, o, "placed.bin");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->lines, (std::vector<std::string>{"huge pages: off (--no-hugepages)"}));
}

TEST_F(PlaceWeights, APendingSigintStopsThePrefault) {
  ThreadPool pool(1);
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &block, &old), 0);
  raise(SIGINT);
  PlacementOptions o;
  o.prefault = true;
  auto r = place_weights(map_.bytes(), experts_, pool, o, "placed.bin");
  // Take the pending signal back before unblocking it.
  int sig = 0;
  sigwait(&block, &sig);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("placed.bin: pre-faulting stopped by SIGINT"), std::string::npos);
}

}  // namespace
}  // namespace onecard
