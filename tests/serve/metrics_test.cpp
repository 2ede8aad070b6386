#include "serve/metrics.h"

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace onecard::serve {
namespace {

TEST(MetricsRegistry, RendersTheExpositionFormatExactly) {
  Registry r;
  auto& requests = r.counter_family("app_requests_total", "Requests handled", {"endpoint", "status"});
  requests.labels({"/v1/models", "200"}).inc();
  requests.labels({"/v1/chat/completions", "200"}).inc(2);
  requests.labels({"/v1/chat/completions", "503"}).inc();
  r.gauge("app_queue", "Waiting requests").set(4);
  auto& h = r.histogram("app_latency_seconds", "Latency", {0.1, 0.5, 1});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(7);
  r.counter_family("app_unused_total", "Never labelled", {"x"});  // no children: not rendered

  EXPECT_EQ(r.render(),
            "# HELP app_requests_total Requests handled\n"
            "# TYPE app_requests_total counter\n"
            "app_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"} 2\n"
            "app_requests_total{endpoint=\"/v1/chat/completions\",status=\"503\"} 1\n"
            "app_requests_total{endpoint=\"/v1/models\",status=\"200\"} 1\n"
            "# HELP app_queue Waiting requests\n"
            "# TYPE app_queue gauge\n"
            "app_queue 4\n"
            "# HELP app_latency_seconds Latency\n"
            "# TYPE app_latency_seconds histogram\n"
            "app_latency_seconds_bucket{le=\"0.1\"} 1\n"
            "app_latency_seconds_bucket{le=\"0.5\"} 2\n"
            "app_latency_seconds_bucket{le=\"1\"} 2\n"
            "app_latency_seconds_bucket{le=\"+Inf\"} 3\n"
            "app_latency_seconds_sum 7.55\n"
            "app_latency_seconds_count 3\n");
}

TEST(MetricsRegistry, UnlabelledCounterRendersZeroBeforeFirstIncrement) {
  Registry r;
  r.counter("x_total", "X");
  EXPECT_EQ(r.render(), "# HELP x_total X\n# TYPE x_total counter\nx_total 0\n");
}

TEST(MetricsRegistry, EscapesLabelValuesAndHelp) {
  Registry r;
  r.counter_family("e_total", "Help with \\ and\nnewline", {"v"}).labels({"a\"b\\c\nd"}).inc();
  EXPECT_EQ(r.render(),
            "# HELP e_total Help with \\\\ and\\nnewline\n"
            "# TYPE e_total counter\n"
            "e_total{v=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(MetricsRegistry, FormatsSpecialValues) {
  Registry r;
  r.gauge("g_inf", "I").set(std::numeric_limits<double>::infinity());
  r.gauge("g_ninf", "N").set(-std::numeric_limits<double>::infinity());
  r.gauge("g_nan", "X").set(std::numeric_limits<double>::quiet_NaN());
  r.gauge("g_frac", "F").set(0.25);
  const std::string text = r.render();
  EXPECT_NE(text.find("g_inf +Inf\n"), std::string::npos);
  EXPECT_NE(text.find("g_ninf -Inf\n"), std::string::npos);
  EXPECT_NE(text.find("g_nan NaN\n"), std::string::npos);
  EXPECT_NE(text.find("g_frac 0.25\n"), std::string::npos);
}

TEST(MetricsHistogram, BucketsAreCumulativeAndInclusive) {
  Histogram h({1, 2, 4});
  for (double v : {0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 100.0}) h.observe(v);
  h.observe(std::numeric_limits<double>::quiet_NaN());  // dropped
  const Histogram::Snapshot s = h.snapshot();
  // le="1" holds 0.5 and 1.0 (bounds are inclusive), le="2" adds 1.5 and 2.0, le="4" adds 3 and 4.
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{2, 4, 6, 8}));
  EXPECT_EQ(s.count, 8u);
  EXPECT_DOUBLE_EQ(s.sum, 117.0);
}

TEST(MetricsHistogram, LabelledFamilyPutsLeLast) {
  Registry r;
  r.histogram_family("t_seconds", "T", {1}, {"endpoint"}).labels({"chat"}).observe(0.5);
  EXPECT_EQ(r.render(),
            "# HELP t_seconds T\n"
            "# TYPE t_seconds histogram\n"
            "t_seconds_bucket{endpoint=\"chat\",le=\"1\"} 1\n"
            "t_seconds_bucket{endpoint=\"chat\",le=\"+Inf\"} 1\n"
            "t_seconds_sum{endpoint=\"chat\"} 0.5\n"
            "t_seconds_count{endpoint=\"chat\"} 1\n");
}

TEST(MetricsCounter, IgnoresNegativeDeltas) {
  Counter c;
  c.inc(3);
  c.inc(-1);
  c.inc(std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(c.value(), 3);
}

TEST(MetricsGauge, BoundGaugeReadsItsCallbackAtRenderTime) {
  Registry r;
  double free_pages = 10;
  Gauge& g = r.gauge("pages_free", "Free pages", [&] { return free_pages; });
  free_pages = 7;
  EXPECT_EQ(g.value(), 7);
  g.set(100);  // ignored while bound
  EXPECT_EQ(r.render(), "# HELP pages_free Free pages\n# TYPE pages_free gauge\npages_free 7\n");
}

TEST(MetricsRegistry, ConcurrentUpdatesFromSeveralThreadsAddUp) {
  Registry r;
  auto& family = r.counter_family("c_total", "C", {"worker"});
  Counter& shared = r.counter("s_total", "S");
  Gauge& gauge = r.gauge("g", "G");
  Histogram& h = r.histogram("h_seconds", "H", {0.5});
  constexpr int kThreads = 8, kIterations = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kIterations; ++i) {
        shared.inc();
        gauge.add(1);
        h.observe(i % 2 == 0 ? 0.25 : 1.0);
        // Children are created and looked up concurrently; two threads share each one.
        family.labels({std::to_string(t % 4)}).inc();
        if (i % 1000 == 0) (void)r.render();  // rendering while others update must be safe
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(shared.value(), kThreads * kIterations);
  EXPECT_EQ(gauge.value(), kThreads * kIterations);
  for (int w = 0; w < 4; ++w) EXPECT_EQ(family.labels({std::to_string(w)}).value(), 2 * kIterations);
  const Histogram::Snapshot s = h.snapshot();
  EXPECT_EQ(s.count, static_cast<uint64_t>(kThreads * kIterations));
  EXPECT_EQ(s.cumulative[0], static_cast<uint64_t>(kThreads * kIterations / 2));
  EXPECT_DOUBLE_EQ(s.sum, kThreads * kIterations / 2 * 1.25);
}

TEST(MetricsDeathTest, WrongLabelCountAborts) {
  Registry r;
  auto& f = r.counter_family("l_total", "L", {"a", "b"});
  EXPECT_DEATH(f.labels({"only one"}), "l_total: wrong number of label values");
}

TEST(MetricsDeathTest, InvalidOrDuplicateNamesAbort) {
  Registry r;
  r.counter("dup_total", "D");
  EXPECT_DEATH(r.counter("dup_total", "D"), "registered twice");
  EXPECT_DEATH(r.counter("bad-name", "B"), "invalid metric name");
  EXPECT_DEATH(r.counter_family("x_total", "X", {"__reserved"}), "invalid label name");
  EXPECT_DEATH(r.histogram_family("h", "H", {1}, {"le"}), "label named le");
  EXPECT_DEATH(r.histogram("h2", "H", {2, 1}), "strictly increasing");
}

TEST(MetricsServer, ExposesTheDeclaredMetrics) {
  ServerMetrics m;
  m.count_request("/v1/chat/completions", 200);
  m.count_request("/v1/chat/completions", 200);
  m.prompt_tokens.inc(12);
  m.generated_tokens.inc(30);
  m.prefix_cache_hit_tokens.inc(8);
  m.requests_waiting.set(2);
  m.sequences_running.set(3);
  m.kv_pages_used.set(40);
  m.kv_pages_free.set(60);
  m.time_to_first_token.observe(0.2);
  m.inter_token_latency.observe(0.04);
  m.request_duration.observe(1.5);
  const std::string text = m.render();
  for (const char* line : {
           "onecard_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"} 2\n",
           "onecard_prompt_tokens_total 12\n",
           "onecard_generation_tokens_total 30\n",
           "onecard_prefix_cache_hit_tokens_total 8\n",
           "onecard_requests_waiting 2\n",
           "onecard_sequences_running 3\n",
           "onecard_kv_pages_used 40\n",
           "onecard_kv_pages_free 60\n",
           "# TYPE onecard_time_to_first_token_seconds histogram\n",
           "onecard_time_to_first_token_seconds_bucket{le=\"0.25\"} 1\n",
           "onecard_inter_token_latency_seconds_count 1\n",
           "onecard_request_duration_seconds_sum 1.5\n",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << line;
  }
  EXPECT_EQ(kMetricsContentType, "text/plain; version=0.0.4; charset=utf-8");
}

}  // namespace
}  // namespace onecard::serve
