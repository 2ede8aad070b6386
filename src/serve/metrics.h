// Prometheus metrics for GET /metrics: a thread-safe registry of counters, gauges and histograms rendered in
// the text exposition format 0.0.4, and ServerMetrics, the set the server exposes. The scheduler updates
// metrics every step, so updates are lock-free atomics; only creating a labelled child takes a lock, and hot
// paths look a child up once and keep the reference (children live as long as the registry).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace onecard::serve {

// The Content-Type of a rendered registry.
inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

class Counter {
 public:
  // Counters only go up: a negative or NaN delta is ignored rather than corrupting rates.
  void inc(double delta = 1.0) {
    if (delta > 0) value_.fetch_add(delta, std::memory_order_relaxed);
  }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double delta) { value_.fetch_add(delta, std::memory_order_relaxed); }
  // From now on value() calls `read` (at render time) instead of returning what set() stored: for values
  // another component already tracks, such as the KV pool's free pages. `read` must be thread-safe.
  void bind(std::function<double()> read);
  double value() const;

 private:
  std::atomic<double> value_{0.0};
  std::atomic<bool> bound_{false};
  mutable std::mutex read_mu_;  // guards read_
  std::function<double()> read_;
};

class Histogram {
 public:
  // `upper_bounds`: the finite bucket bounds, strictly increasing; the +Inf bucket is implied.
  explicit Histogram(std::vector<double> upper_bounds);
  // NaN observations are dropped.
  void observe(double v);

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // one per upper bound, then +Inf (== count)
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot snapshot() const;
  const std::vector<double>& upper_bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  // Per-bucket (not cumulative) counts, the last for +Inf: count is their sum, so a snapshot taken during
  // observations still has count == the +Inf bucket, as Prometheus requires.
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<double> sum_{0.0};
};

class Registry;

// One metric name with its label names; a child metric per distinct tuple of label values.
template <class Metric>
class Family {
 public:
  // The child with these label values (one per label name, in order), created at first use.
  Metric& labels(std::initializer_list<std::string_view> values) {
    return child(std::vector<std::string>(values.begin(), values.end()));
  }
  Metric& labels(const std::vector<std::string>& values) { return child(values); }

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

  // Calls fn(label_values, metric) for each child, in the order of their label values, under the lock.
  template <class Fn>
  void for_each(Fn&& fn) const {
    std::lock_guard lock(mu_);
    for (const auto& [values, metric] : children_) fn(values, *metric);
  }

 private:
  friend class Registry;
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::function<std::unique_ptr<Metric>()> make)
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        make_(std::move(make)) {}
  Metric& child(std::vector<std::string> values);

  std::string name_, help_;
  std::vector<std::string> label_names_;
  std::function<std::unique_ptr<Metric>()> make_;
  mutable std::mutex mu_;  // guards children_
  std::map<std::vector<std::string>, std::unique_ptr<Metric>> children_;
};

// Aborts with a message naming the metric: a wrong label count is a bug in the caller, not a runtime error.
[[noreturn]] void die_metrics_misuse(std::string_view name, std::string_view what);

template <class Metric>
Metric& Family<Metric>::child(std::vector<std::string> values) {
  if (values.size() != label_names_.size()) die_metrics_misuse(name_, "wrong number of label values");
  std::lock_guard lock(mu_);
  auto& slot = children_[std::move(values)];
  if (!slot) slot = make_();
  return *slot;
}

// The registry owns its families; names must be valid Prometheus names and unique (misuse aborts). Families
// render in the order they were registered.
class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Family<Counter>& counter_family(std::string name, std::string help, std::vector<std::string> label_names);
  Family<Gauge>& gauge_family(std::string name, std::string help, std::vector<std::string> label_names);
  Family<Histogram>& histogram_family(std::string name, std::string help, std::vector<double> upper_bounds,
                                      std::vector<std::string> label_names);

  // Unlabelled metrics: a family with one child, rendered from the start (a counter shows 0).
  Counter& counter(std::string name, std::string help);
  Gauge& gauge(std::string name, std::string help);
  Gauge& gauge(std::string name, std::string help, std::function<double()> read);  // bound at once
  Histogram& histogram(std::string name, std::string help, std::vector<double> upper_bounds);

  // The text exposition format. Families without children are left out.
  std::string render() const;

 private:
  void check_new_name(const std::string& name, const std::vector<std::string>& label_names) const;

  using Entry = std::variant<std::unique_ptr<Family<Counter>>, std::unique_ptr<Family<Gauge>>,
                             std::unique_ptr<Family<Histogram>>>;
  mutable std::mutex mu_;  // guards families_ (not the families' children)
  std::vector<Entry> families_;
};

// What `onecard serve` exposes. Field comments give the metric names.
struct ServerMetrics {
  ServerMetrics();
  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;

  // Counts one finished HTTP request: onecard_requests_total{endpoint="/v1/chat/completions",status="200"}.
  void count_request(std::string_view endpoint, int status);
  std::string render() const { return registry.render(); }

  Registry registry;
  Family<Counter>& requests;         // onecard_requests_total{endpoint, status}
  Counter& prompt_tokens;            // onecard_prompt_tokens_total
  Counter& generated_tokens;         // onecard_generation_tokens_total
  Counter& prefix_cache_hit_tokens;  // onecard_prefix_cache_hit_tokens_total: prompt tokens not recomputed
  Gauge& requests_waiting;           // onecard_requests_waiting: queued, not yet admitted
  Gauge& sequences_running;          // onecard_sequences_running
  Gauge& kv_pages_used;              // onecard_kv_pages_used
  Gauge& kv_pages_free;              // onecard_kv_pages_free
  Histogram& time_to_first_token;    // onecard_time_to_first_token_seconds
  Histogram& inter_token_latency;    // onecard_inter_token_latency_seconds
  Histogram& request_duration;       // onecard_request_duration_seconds
};

}  // namespace onecard::serve
