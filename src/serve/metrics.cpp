#include "serve/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

namespace onecard::serve {

void die_metrics_misuse(std::string_view name, std::string_view what) {
  std::fprintf(stderr, "onecard: internal error: metric %.*s: %.*s\n", static_cast<int>(name.size()),
               name.data(), static_cast<int>(what.size()), what.data());
  std::abort();
}

void Gauge::bind(std::function<double()> read) {
  std::lock_guard lock(read_mu_);
  read_ = std::move(read);
  bound_.store(static_cast<bool>(read_), std::memory_order_release);
}

double Gauge::value() const {
  if (bound_.load(std::memory_order_acquire)) {
    std::lock_guard lock(read_mu_);
    if (read_) return read_();
  }
  return value_.load(std::memory_order_relaxed);
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i]) || (i > 0 && !(bounds_[i] > bounds_[i - 1])))
      die_metrics_misuse("histogram", "bucket bounds must be finite and strictly increasing");
  }
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) {
  if (std::isnan(v)) return;
  // Prometheus buckets are "less than or equal": the first bound >= v.
  const size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = running;
  }
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

namespace {

bool valid_name(std::string_view s, bool allow_colon) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

std::string escape_help(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string escape_label_value(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// Values as Go's client writes them in spirit: shortest round-trip decimal, and +Inf / -Inf / NaN.
std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

// `{a="x",b="y"}` with an optional extra pair (the histogram's le) last; empty when there are no labels.
std::string label_set(const std::vector<std::string>& names, const std::vector<std::string>& values,
                      std::string_view extra_name = {}, std::string_view extra_value = {}) {
  if (names.empty() && extra_name.empty()) return {};
  std::string out = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    out += fmt::format("{}=\"{}\"", names[i], escape_label_value(values[i]));
  }
  if (!extra_name.empty()) {
    if (!names.empty()) out += ',';
    out += fmt::format("{}=\"{}\"", extra_name, escape_label_value(extra_value));
  }
  return out + "}";
}

void render_header(std::string& out, const std::string& name, const std::string& help,
                   std::string_view type) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, escape_help(help), name, type);
}

template <class Metric>
bool has_children(const Family<Metric>& f) {
  bool any = false;
  f.for_each([&](const auto&, const auto&) { any = true; });
  return any;
}

void render_family(std::string& out, const Family<Counter>& f) {
  if (!has_children(f)) return;
  render_header(out, f.name(), f.help(), "counter");
  f.for_each([&](const std::vector<std::string>& values, const Counter& c) {
    out += fmt::format("{}{} {}\n", f.name(), label_set(f.label_names(), values), format_value(c.value()));
  });
}

void render_family(std::string& out, const Family<Gauge>& f) {
  if (!has_children(f)) return;
  render_header(out, f.name(), f.help(), "gauge");
  f.for_each([&](const std::vector<std::string>& values, const Gauge& g) {
    out += fmt::format("{}{} {}\n", f.name(), label_set(f.label_names(), values), format_value(g.value()));
  });
}

void render_family(std::string& out, const Family<Histogram>& f) {
  if (!has_children(f)) return;
  render_header(out, f.name(), f.help(), "histogram");
  f.for_each([&](const std::vector<std::string>& values, const Histogram& h) {
    const Histogram::Snapshot s = h.snapshot();
    const auto& bounds = h.upper_bounds();
    for (size_t i = 0; i <= bounds.size(); ++i) {
      const std::string le = i < bounds.size() ? format_value(bounds[i]) : "+Inf";
      out += fmt::format("{}_bucket{} {}\n", f.name(), label_set(f.label_names(), values, "le", le),
                         s.cumulative[i]);
    }
    const std::string labels = label_set(f.label_names(), values);
    out += fmt::format("{}_sum{} {}\n", f.name(), labels, format_value(s.sum));
    out += fmt::format("{}_count{} {}\n", f.name(), labels, s.count);
  });
}

}  // namespace

void Registry::check_new_name(const std::string& name, const std::vector<std::string>& label_names) const {
  if (!valid_name(name, true)) die_metrics_misuse(name, "invalid metric name");
  for (const auto& l : label_names) {
    if (!valid_name(l, false) || l.starts_with("__")) die_metrics_misuse(name, "invalid label name " + l);
  }
  for (const auto& e : families_) {
    const bool taken = std::visit([&](const auto& f) { return f->name() == name; }, e);
    if (taken) die_metrics_misuse(name, "registered twice");
  }
}

Family<Counter>& Registry::counter_family(std::string name, std::string help,
                                          std::vector<std::string> label_names) {
  std::lock_guard lock(mu_);
  check_new_name(name, label_names);
  auto* f = new Family<Counter>(std::move(name), std::move(help), std::move(label_names),
                                [] { return std::make_unique<Counter>(); });
  families_.emplace_back(std::unique_ptr<Family<Counter>>(f));
  return *f;
}

Family<Gauge>& Registry::gauge_family(std::string name, std::string help,
                                      std::vector<std::string> label_names) {
  std::lock_guard lock(mu_);
  check_new_name(name, label_names);
  auto* f = new Family<Gauge>(std::move(name), std::move(help), std::move(label_names),
                              [] { return std::make_unique<Gauge>(); });
  families_.emplace_back(std::unique_ptr<Family<Gauge>>(f));
  return *f;
}

Family<Histogram>& Registry::histogram_family(std::string name, std::string help,
                                              std::vector<double> upper_bounds,
                                              std::vector<std::string> label_names) {
  std::lock_guard lock(mu_);
  check_new_name(name, label_names);
  if (std::find(label_names.begin(), label_names.end(), "le") != label_names.end())
    die_metrics_misuse(name, "a histogram cannot have a label named le");
  Histogram probe(upper_bounds);  // checks the bounds now rather than at the first child
  auto* f = new Family<Histogram>(
      std::move(name), std::move(help), std::move(label_names),
      [bounds = std::move(upper_bounds)] { return std::make_unique<Histogram>(bounds); });
  families_.emplace_back(std::unique_ptr<Family<Histogram>>(f));
  return *f;
}

Counter& Registry::counter(std::string name, std::string help) {
  return counter_family(std::move(name), std::move(help), {}).labels({});
}

Gauge& Registry::gauge(std::string name, std::string help) {
  return gauge_family(std::move(name), std::move(help), {}).labels({});
}

Gauge& Registry::gauge(std::string name, std::string help, std::function<double()> read) {
  Gauge& g = gauge(std::move(name), std::move(help));
  g.bind(std::move(read));
  return g;
}

Histogram& Registry::histogram(std::string name, std::string help, std::vector<double> upper_bounds) {
  return histogram_family(std::move(name), std::move(help), std::move(upper_bounds), {}).labels({});
}

std::string Registry::render() const {
  std::string out;
  std::lock_guard lock(mu_);
  for (const auto& e : families_) std::visit([&](const auto& f) { render_family(out, *f); }, e);
  return out;
}

ServerMetrics::ServerMetrics()
    : requests(registry.counter_family("onecard_requests_total",
                                       "HTTP requests handled, by endpoint and status code",
                                       {"endpoint", "status"})),
      prompt_tokens(registry.counter("onecard_prompt_tokens_total", "Prompt tokens of admitted requests")),
      generated_tokens(registry.counter("onecard_generation_tokens_total", "Tokens generated")),
      prefix_cache_hit_tokens(
          registry.counter("onecard_prefix_cache_hit_tokens_total",
                           "Prompt tokens served from the prefix cache instead of computed")),
      requests_waiting(registry.gauge("onecard_requests_waiting", "Requests queued, not yet running")),
      sequences_running(registry.gauge("onecard_sequences_running", "Sequences in the running batch")),
      kv_pages_used(registry.gauge("onecard_kv_pages_used", "KV cache pages in use")),
      kv_pages_free(registry.gauge("onecard_kv_pages_free", "KV cache pages free")),
      // Prefill on the CPU can take minutes for long prompts, hence the long tail of buckets.
      time_to_first_token(registry.histogram(
          "onecard_time_to_first_token_seconds", "Time from request arrival to its first generated token",
          {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300})),
      // CPU decode of a 671B MoE runs at a few to tens of tokens a second.
      inter_token_latency(registry.histogram(
          "onecard_inter_token_latency_seconds", "Time between consecutive generated tokens of a sequence",
          {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2.5, 5})),
      request_duration(
          registry.histogram("onecard_request_duration_seconds", "Time from request arrival to its last byte",
                             {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600})) {}

void ServerMetrics::count_request(std::string_view endpoint, int status) {
  requests.labels({endpoint, std::to_string(status)}).inc();
}

}  // namespace onecard::serve
