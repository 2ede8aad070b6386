#include "base/numa.h"

#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "base/mmap.h"
#include "fake_sysfs.h"

namespace onecard {
namespace {

using Cpus = std::vector<int>;

CpuTopology no_smt(const Cpus& cpus) {
  CpuTopology t;
  t.cpus = cpus;
  for (int c : cpus) t.cores.push_back({c});
  return t;
}

std::vector<NumaNode> two_nodes(int cpus_each) {
  std::vector<NumaNode> nodes(2);
  for (int n = 0; n < 2; ++n) {
    nodes[n].id = n;
    for (int c = 0; c < cpus_each; ++c) nodes[n].cpus.push_back(n * cpus_each + c);
  }
  return nodes;
}

TEST(NumaNodes, ReadsCpusAndMemoryFromSysfs) {
  test::FakeSysfs fs("numa_nodes");
  fs.write("online", "0-1\n");
  fs.write("possible", "0-1\n");
  fs.write("node1/cpulist", "4-7\n");
  fs.write("node1/meminfo", "Node 1 MemTotal:  2048 kB\nNode 1 MemFree:  1024 kB\nNode 1 MemUsed: 1024 kB\n");
  fs.write("node0/cpulist", "0-3\n");
  fs.write("node0/meminfo", "Node 0 MemTotal:  4096 kB\nNode 0 MemFree:  512 kB\n");
  fs.write("node2/cpulist", "\n");   // memory only
  fs.write("nodeX/cpulist", "9\n");  // not a node
  const auto nodes = read_numa_nodes(fs.root());
  ASSERT_EQ(nodes.size(), 3u);
  EXPECT_EQ(nodes[0].id, 0);
  EXPECT_EQ(nodes[0].cpus, (Cpus{0, 1, 2, 3}));
  EXPECT_EQ(nodes[0].memory_total, 4096u * 1024);
  EXPECT_EQ(nodes[0].memory_free, 512u * 1024);
  EXPECT_EQ(nodes[1].cpus, (Cpus{4, 5, 6, 7}));
  EXPECT_EQ(nodes[1].memory_free, 1024u * 1024);
  EXPECT_TRUE(nodes[2].cpus.empty());
  EXPECT_TRUE(read_numa_nodes(fs.root() + "/missing").empty());
}

TEST(NumaMode, NamesRoundTripAndUnknownNamesAreErrors) {
  EXPECT_EQ(numa_mode_from_name("interleave").value(), NumaMode::kInterleave);
  EXPECT_EQ(numa_mode_from_name("none").value(), NumaMode::kNone);
  EXPECT_EQ(numa_mode_name(NumaMode::kNone), "none");
  auto bad = numa_mode_from_name("replicate");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("'replicate'"), std::string::npos);
}

TEST(NumaPlan, OneNodeDoesNothing) {
  std::vector<NumaNode> one(1);
  one[0].cpus = {0, 1};
  const NumaPlan plan = plan_numa(NumaMode::kInterleave, one, no_smt({0, 1}), 2, true);
  EXPECT_TRUE(plan.nodes.empty());
  EXPECT_FALSE(plan.interleave);
  EXPECT_EQ(plan.thread_node, (std::vector<int>{-1, -1}));
  EXPECT_TRUE(plan.warning.empty());
  EXPECT_TRUE(plan_numa(NumaMode::kInterleave, {}, no_smt({0, 1}), 2, true).nodes.empty());
}

TEST(NumaPlan, ThreadsSpreadOverTwoNodes) {
  const NumaPlan plan =
      plan_numa(NumaMode::kInterleave, two_nodes(4), no_smt({0, 1, 2, 3, 4, 5, 6, 7}), 8, true);
  ASSERT_EQ(plan.nodes.size(), 2u);
  EXPECT_TRUE(plan.interleave);
  // Thread 0 (the caller) is counted on node 0 and not pinned.
  EXPECT_EQ(plan.thread_node, (std::vector<int>{-1, 1, 0, 1, 0, 1, 0, 1}));
  EXPECT_NE(plan.summary.find("2 nodes"), std::string::npos);
  EXPECT_NE(plan.summary.find("interleaved"), std::string::npos);
}

TEST(NumaPlan, ThreadsFollowEachNodesUsableCores) {
  // The affinity mask leaves node 1 one core of four: it gets a quarter of node 0's threads at most.
  const NumaPlan plan = plan_numa(NumaMode::kNone, two_nodes(4), no_smt({0, 1, 2, 3, 4}), 5, true);
  ASSERT_EQ(plan.nodes.size(), 2u);
  EXPECT_EQ(plan.nodes[1].cpus, Cpus{4});
  EXPECT_EQ(std::count(plan.thread_node.begin(), plan.thread_node.end(), 1), 1);
  EXPECT_FALSE(plan.interleave);
  EXPECT_NE(plan.summary.find("first touched"), std::string::npos);
  // A mask inside one node leaves one node with usable CPUs: nothing to place.
  EXPECT_TRUE(plan_numa(NumaMode::kInterleave, two_nodes(4), no_smt({4, 5}), 2, true).nodes.empty());
}

TEST(NumaPlan, SmtSiblingsCountAsOneCore) {
  CpuTopology t;
  t.cpus = {0, 1, 2, 3, 4, 5, 6, 7};
  t.cores = {{0, 1}, {2, 3}, {4}, {5}, {6}, {7}};  // node 0: two cores with SMT; node 1: four cores
  const NumaPlan plan = plan_numa(NumaMode::kInterleave, two_nodes(4), t, 6, true);
  EXPECT_EQ(std::count(plan.thread_node.begin(), plan.thread_node.end(), 1), 4);
}

TEST(NumaPlan, InterleaveWithoutLibnumaWarnsAndFallsBack) {
  const NumaPlan plan = plan_numa(NumaMode::kInterleave, two_nodes(2), no_smt({0, 1, 2, 3}), 4, false);
  EXPECT_EQ(plan.nodes.size(), 2u);
  EXPECT_FALSE(plan.interleave);
  EXPECT_NE(plan.warning.find("--numa interleave"), std::string::npos);
  EXPECT_TRUE(plan_numa(NumaMode::kNone, two_nodes(2), no_smt({0, 1, 2, 3}), 4, false).warning.empty());
}

TEST(NumaPlan, MemoryOnlyNodesGetNoThreads) {
  std::vector<NumaNode> nodes = two_nodes(2);
  nodes.push_back(NumaNode{2, {}, 1 << 30, 1 << 30});
  const NumaPlan plan = plan_numa(NumaMode::kInterleave, nodes, no_smt({0, 1, 2, 3}), 4, true);
  ASSERT_EQ(plan.nodes.size(), 2u);
  EXPECT_EQ(std::count(plan.thread_node.begin(), plan.thread_node.end(), 2), 0);
}

TEST(NumaCalls, PinningToTheCurrentMaskSucceeds) {
  EXPECT_TRUE(pin_current_thread(affinity_cpus()).ok());
}

// On one node, interleaving over that node is valid: the libnuma calls run for real.
TEST(NumaCalls, InterleavingOverTheOneNodeSucceeds) {
  if (!have_libnuma()) GTEST_SKIP() << libnuma_state();
  const std::vector<int> node0{0};
  const Status thread = set_thread_interleave(node0);
  ASSERT_TRUE(thread.ok()) << thread.error().message();
  ASSERT_TRUE(set_thread_interleave({}).ok());
  const std::string path = test::temp_path("interleaved.bin");
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  std::ofstream(path, std::ios::binary) << std::string(8 * page, 'x');
  const MappedFile map = MappedFile::open(path).value();
  volatile uint8_t first = map.data()[page];
  (void)first;
  const Status range = interleave_range(map.data() + 10, 5 * page, node0, true);
  EXPECT_TRUE(range.ok()) << range.error().message();
  // Less than a page inside: nothing to bind.
  EXPECT_TRUE(interleave_range(map.data() + 10, page, node0, false).ok());
}

}  // namespace
}  // namespace onecard
