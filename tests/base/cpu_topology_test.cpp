#include "base/cpu_topology.h"

#include <gtest/gtest.h>

#include "fake_sysfs.h"

namespace onecard {
namespace {

using Cpus = std::vector<int>;

// Linux numbers SMT siblings apart: on one package of `cores` cores, CPU c and c+cores share a core.
void write_smt_package(const test::FakeSysfs& fs, int package, int cores, int first_cpu, int n_total) {
  for (int i = 0; i < cores; ++i) {
    for (int cpu : {first_cpu + i, first_cpu + i + n_total / 2}) {
      const std::string dir = "cpu" + std::to_string(cpu) + "/topology/";
      fs.write(dir + "thread_siblings_list",
               std::to_string(first_cpu + i) + "," + std::to_string(first_cpu + i + n_total / 2) + "\n");
      fs.write(dir + "physical_package_id", std::to_string(package) + "\n");
      fs.write(dir + "core_id", std::to_string(i) + "\n");
    }
  }
}

Cpus range(int first, int last) {
  Cpus v;
  for (int c = first; c <= last; ++c) v.push_back(c);
  return v;
}

TEST(CpuList, ParsesAndFormatsSysfsLists) {
  EXPECT_EQ(parse_cpu_list("0-3,8,10-11\n").value(), (Cpus{0, 1, 2, 3, 8, 10, 11}));
  EXPECT_EQ(parse_cpu_list("5").value(), Cpus{5});
  EXPECT_TRUE(parse_cpu_list("\n").value().empty());
  EXPECT_EQ(parse_cpu_list("3,1-2,2").value(), (Cpus{1, 2, 3}));
  for (const char* bad : {"a", "3-1", "1,,2", "-1", "1-"}) {
    auto r = parse_cpu_list(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message().find(bad), std::string::npos);
  }
  EXPECT_EQ(format_cpu_list(Cpus{0, 1, 2, 3, 8, 10, 11}), "0-3,8,10-11");
  EXPECT_EQ(format_cpu_list(Cpus{}), "");
}

TEST(CpuTopology, SmtPairsCountOnce) {
  test::FakeSysfs fs("cpu_smt");
  fs.write("online", "0-7\n");
  write_smt_package(fs, 0, 4, 0, 8);
  const CpuTopology t = read_cpu_topology(fs.root(), range(0, 7));
  EXPECT_EQ(t.logical(), 8);
  EXPECT_EQ(t.physical(), 4);
  EXPECT_EQ(t.cores[1], (Cpus{1, 5}));
}

TEST(CpuTopology, TwoPackagesWithTheSameCoreIds) {
  test::FakeSysfs fs("cpu_two_packages");
  fs.write("online", "0-7\n");
  // No thread_siblings_list: the cores are told apart by (package, core_id).
  for (int cpu = 0; cpu < 8; ++cpu) {
    const std::string dir = "cpu" + std::to_string(cpu) + "/topology/";
    fs.write(dir + "physical_package_id", std::to_string(cpu / 4) + "\n");
    fs.write(dir + "core_id", std::to_string(cpu % 4) + "\n");
  }
  const CpuTopology t = read_cpu_topology(fs.root(), range(0, 7));
  EXPECT_EQ(t.physical(), 8);
}

TEST(CpuTopology, OfflineCpusAndTheAffinityMaskAreLeftOut) {
  test::FakeSysfs fs("cpu_offline");
  write_smt_package(fs, 0, 4, 0, 8);
  fs.write("online", "0-2,4-6\n");  // CPUs 3 and 7 (core 3) are offline
  EXPECT_EQ(read_cpu_topology(fs.root(), range(0, 7)).physical(), 3);
  // An affinity mask of one sibling per core, as `taskset -c 0-3` gives.
  const CpuTopology half = read_cpu_topology(fs.root(), range(0, 3));
  EXPECT_EQ(half.cpus, (Cpus{0, 1, 2}));
  EXPECT_EQ(half.physical(), 3);
  // Both siblings of core 0 and one of core 1.
  EXPECT_EQ(read_cpu_topology(fs.root(), Cpus{0, 4, 5}).physical(), 2);
}

TEST(CpuTopology, WithoutTopologyFilesEachCpuIsACore) {
  test::FakeSysfs fs("cpu_bare");
  const CpuTopology t = read_cpu_topology(fs.root(), Cpus{0, 1});
  EXPECT_EQ(t.logical(), 2);
  EXPECT_EQ(t.physical(), 2);
}

TEST(CpuTopology, ThisProcessHasAtLeastOneCore) {
  const CpuTopology& t = cpu_topology();
  EXPECT_GE(t.physical(), 1);
  EXPECT_LE(t.physical(), t.logical());
}

}  // namespace
}  // namespace onecard
