// `onecard bench-serve --url URL`: a load generator for a running `onecard serve` (or any OpenAI-compatible
// server), in the manner of vLLM's benchmark_serving: N concurrent clients send M streamed requests and it
// reports throughput, time to first token, inter-token latency and end-to-end latency.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "base/result.h"
#include "base/rng.h"
#include "serve/latency_stats.h"
#include "serve/sse_reader.h"

namespace onecard::app {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct BenchServeOptions {
  std::string url = "http://127.0.0.1:8080";
  int clients = 4;
  int requests = 32;
  int max_tokens = 128;
  std::string prompt;
  int prompt_words = 64;
  std::string system;
  std::string endpoint = "chat";
  std::string api_key;
  std::string model;
  double temperature = 1.0;
  uint64_t seed = 0;
  double timeout = 600;
  bool json = false;
};

// Where requests go: httplib wants "scheme://host:port" apart from the path.
struct Target {
  std::string origin;  // http://127.0.0.1:8080
  std::string prefix;  // a path the server is mounted under, usually empty
};

Result<Target> parse_url(std::string url) {
  if (url.find("://") == std::string::npos) url = "http://" + url;
  if (!url.starts_with("http://") && !url.starts_with("https://"))
    return make_error("--url {}: only http:// and https:// URLs are supported", url);
  const size_t host_start = url.find("://") + 3;
  const size_t slash = url.find('/', host_start);
  Target t;
  t.origin = url.substr(0, slash);
  if (t.origin.size() == host_start) return make_error("--url {}: no host", url);
  if (slash != std::string::npos) t.prefix = url.substr(slash);
  while (t.prefix.ends_with('/')) t.prefix.pop_back();
  // OpenAI clients take a base URL ending in /v1; accept it rather than requesting /v1/v1/....
  if (t.prefix.ends_with("/v1")) t.prefix.resize(t.prefix.size() - 3);
  return t;
}

httplib::Headers auth_headers(const BenchServeOptions& o) {
  httplib::Headers h;
  if (!o.api_key.empty()) h.emplace("Authorization", "Bearer " + o.api_key);
  return h;
}

void configure(httplib::Client& cli, const BenchServeOptions& o) {
  cli.set_connection_timeout(10);
  // The read timeout is the longest silence allowed: a long prefill on the CPU sends nothing for a while.
  const auto usec = static_cast<int64_t>(o.timeout * 1e6);
  cli.set_read_timeout(static_cast<time_t>(usec / 1000000), static_cast<time_t>(usec % 1000000));
  cli.set_write_timeout(10);
  cli.set_keep_alive(true);
}

// httplib's names for its errors ("Connection", "Read") say little to someone running a benchmark.
std::string describe(httplib::Error e) {
  switch (e) {
    case httplib::Error::Connection:
      return "connection refused or host unreachable";
    case httplib::Error::ConnectionTimeout:
      return "connection timed out";
    case httplib::Error::Read:
      return "no answer (read failed or --timeout passed)";
    case httplib::Error::Write:
      return "sending the request failed";
    default:
      return httplib::to_string(e);
  }
}

// The error message of an OpenAI-style error body, else the start of the body.
std::string error_message(const std::string& body) {
  const json j = json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("error")) {
    const json& e = j["error"];
    if (e.is_object() && e.contains("message") && e["message"].is_string())
      return e["message"].get<std::string>();
    if (e.is_string()) return e.get<std::string>();
  }
  return body.substr(0, 200);
}

// The model to name in requests: --model, else the first that /v1/models lists. Failing to connect at all is
// the usual mistake (no server, wrong port), so that error names the URL.
Result<std::string> resolve_model(const BenchServeOptions& o, const Target& t) {
  httplib::Client cli(t.origin);
  configure(cli, o);
  cli.set_read_timeout(30);
  const std::string path = t.prefix + "/v1/models";
  auto res = cli.Get(path, auth_headers(o));
  if (!res)
    return make_error("cannot reach {} (GET {}: {}); is the server running there?", o.url, path,
                      describe(res.error()));
  if (!o.model.empty()) return o.model;  // the server answered; its model list is not needed
  if (res->status != 200)
    return make_error("GET {}{}: HTTP {}: {}{}", t.origin, path, res->status, error_message(res->body),
                      res->status == 401 ? " (pass --api-key)" : "");
  const json j = json::parse(res->body, nullptr, false);
  if (j.is_object() && j.contains("data") && j["data"].is_array() && !j["data"].empty() &&
      j["data"][0].is_object() && j["data"][0].contains("id") && j["data"][0]["id"].is_string())
    return j["data"][0]["id"].get<std::string>();
  return make_error("GET {}{}: no model listed; pass --model", t.origin, path);
}

constexpr std::string_view kWords[] = {
    "time",   "year",   "people",  "way",    "day",     "man",      "thing",    "woman",  "life",  "child",
    "world",  "school", "state",   "family", "group",   "country",  "problem",  "hand",   "part",  "place",
    "case",   "week",   "company", "system", "program", "question", "work",     "number", "night", "point",
    "home",   "water",  "room",    "mother", "area",    "money",    "story",    "fact",   "month", "lot",
    "right",  "study",  "book",    "eye",    "job",     "word",     "business", "issue",  "side",  "kind",
    "head",   "house",  "service", "friend", "father",  "power",    "hour",     "game",   "line",  "end",
    "member", "law",    "car",     "city",   "name",    "river",    "green",    "quick",  "small", "bright",
    "cold",   "open",   "early",   "strong", "quiet",   "happy"};

std::string random_words(int n, uint64_t seed) {
  Rng rng(seed, "bench-serve-prompt");
  std::string out;
  for (int i = 0; i < n; ++i) {
    if (i > 0) out += ' ';
    out += kWords[rng.below(static_cast<uint32_t>(std::size(kWords)))];
  }
  return out;
}

std::string request_body(const BenchServeOptions& o, const std::string& model, int index) {
  const uint64_t seed = o.seed + static_cast<uint64_t>(index);
  // Distinct prompts per request, so that only --system is a shared prefix for the prefix cache.
  const std::string prompt = o.prompt.empty() ? random_words(o.prompt_words, seed) : o.prompt;
  json body = {{"model", model},
               {"max_tokens", o.max_tokens},
               {"temperature", o.temperature},
               {"seed", seed},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}}};
  if (o.endpoint == "chat") {
    json messages = json::array();
    if (!o.system.empty()) messages.push_back({{"role", "system"}, {"content", o.system}});
    messages.push_back({{"role", "user"}, {"content", prompt}});
    body["messages"] = std::move(messages);
  } else {
    body["prompt"] = o.system.empty() ? prompt : o.system + "\n\n" + prompt;
  }
  return body.dump();
}

struct RequestResult {
  bool ok = false;
  std::string error_kind;  // "HTTP 503", "connection", "stream"
  std::string error;
  double ttft = NAN;  // seconds to the first chunk that carries text
  double e2e = NAN;
  std::vector<double> itl;  // seconds between consecutive text chunks
  int64_t output_tokens = 0;
  int64_t prompt_tokens = 0;
};

bool non_empty_string(const json& j, const char* key) {
  return j.contains(key) && j[key].is_string() && !j[key].get_ref<const std::string&>().empty();
}

// Whether a streamed chunk carries generated text (or a tool call): only those count for TTFT and ITL.
bool carries_text(const json& chunk) {
  if (!chunk.contains("choices") || !chunk["choices"].is_array() || chunk["choices"].empty()) return false;
  const json& choice = chunk["choices"][0];
  if (!choice.is_object()) return false;
  if (non_empty_string(choice, "text")) return true;
  if (!choice.contains("delta") || !choice["delta"].is_object()) return false;
  const json& delta = choice["delta"];
  return non_empty_string(delta, "content") || non_empty_string(delta, "reasoning_content") ||
         (delta.contains("tool_calls") && delta["tool_calls"].is_array() && !delta["tool_calls"].empty());
}

RequestResult run_request(httplib::Client& cli, const std::string& path, const httplib::Headers& headers,
                          std::string body) {
  RequestResult r;
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.headers = headers;
  req.headers.emplace("Content-Type", "application/json");
  req.headers.emplace("Accept", "text/event-stream");
  req.body = std::move(body);

  int status = 0;
  std::string error_body;
  serve::SseReader reader;
  bool done = false;
  int64_t text_chunks = 0;
  std::optional<int64_t> usage_tokens;
  std::string stream_error;
  const Clock::time_point start = Clock::now();
  Clock::time_point last;
  auto on_event = [&](const serve::SseEvent& e, Clock::time_point now) {
    if (done || !stream_error.empty()) return;
    if (e.data == "[DONE]") {
      done = true;
      return;
    }
    const json chunk = json::parse(e.data, nullptr, false);
    if (!chunk.is_object()) {
      stream_error = "not JSON in the stream: " + e.data.substr(0, 100);
      return;
    }
    if (chunk.contains("error")) {
      stream_error = error_message(e.data);
      return;
    }
    if (chunk.contains("usage") && chunk["usage"].is_object()) {
      const json& u = chunk["usage"];
      if (u.contains("completion_tokens") && u["completion_tokens"].is_number_integer())
        usage_tokens = u["completion_tokens"].get<int64_t>();
      if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number_integer())
        r.prompt_tokens = u["prompt_tokens"].get<int64_t>();
    }
    if (!carries_text(chunk)) return;
    if (text_chunks == 0) {
      r.ttft = std::chrono::duration<double>(now - start).count();
    } else {
      r.itl.push_back(std::chrono::duration<double>(now - last).count());
    }
    last = now;
    ++text_chunks;
  };
  req.response_handler = [&](const httplib::Response& res) {
    status = res.status;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    const Clock::time_point now = Clock::now();
    if (status != 200) {
      if (error_body.size() < 65536) error_body.append(data, n);
      return true;
    }
    for (const auto& e : reader.feed(std::string_view(data, n))) on_event(e, now);
    return true;
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  const bool sent = cli.send(req, res, err);
  r.e2e = std::chrono::duration<double>(Clock::now() - start).count();
  if (status == 200) {
    if (auto e = reader.finish()) on_event(*e, Clock::now());
  }
  if (!sent && status == 0) {
    r.error_kind = "connection";
    r.error = describe(err);
  } else if (status != 200) {
    r.error_kind = fmt::format("HTTP {}", status);
    r.error = error_message(error_body);
  } else if (!stream_error.empty()) {
    r.error_kind = "stream";
    r.error = stream_error;
  } else if (!sent) {
    r.error_kind = "stream";
    r.error = fmt::format("stream broken: {}", describe(err));
  } else if (!done) {
    r.error_kind = "stream";
    r.error = "stream ended before data: [DONE]";
  } else {
    r.ok = true;
  }
  r.output_tokens = usage_tokens.value_or(text_chunks);
  return r;
}

struct Report {
  std::vector<RequestResult> results;
  double duration = 0;
};

Report run_clients(const BenchServeOptions& o, const Target& t, const std::string& model) {
  Report report;
  report.results.resize(static_cast<size_t>(o.requests));
  const std::string path = t.prefix + (o.endpoint == "chat" ? "/v1/chat/completions" : "/v1/completions");
  const httplib::Headers headers = auth_headers(o);
  std::atomic<int> next{0};
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < std::min(o.clients, o.requests); ++c) {
    threads.emplace_back([&] {
      httplib::Client cli(t.origin);
      configure(cli, o);
      while (true) {
        const int i = next.fetch_add(1);
        if (i >= o.requests) break;
        report.results[static_cast<size_t>(i)] = run_request(cli, path, headers, request_body(o, model, i));
      }
    });
  }
  for (auto& th : threads) th.join();
  report.duration = std::chrono::duration<double>(Clock::now() - start).count();
  return report;
}

json summary_ms(const serve::Summary& s) {
  return {{"mean", s.mean * 1e3}, {"p50", s.p50 * 1e3}, {"p90", s.p90 * 1e3}, {"p99", s.p99 * 1e3}};
}

std::string ms(double seconds) {
  return std::isnan(seconds) ? "-" : fmt::format("{:.2f}", seconds * 1e3);
}

int print_report(const BenchServeOptions& o, const Target& t, const std::string& model, const Report& rep) {
  int64_t ok = 0, output_tokens = 0, prompt_tokens = 0;
  std::vector<double> ttft, itl, e2e;
  std::map<std::string, int> errors;
  std::string first_error;
  for (const auto& r : rep.results) {
    if (!r.ok) {
      ++errors[r.error_kind];
      if (first_error.empty()) first_error = r.error_kind + ": " + r.error;
      continue;
    }
    ++ok;
    output_tokens += r.output_tokens;
    prompt_tokens += r.prompt_tokens;
    ttft.push_back(r.ttft);
    e2e.push_back(r.e2e);
    itl.insert(itl.end(), r.itl.begin(), r.itl.end());
  }
  const int64_t failed = static_cast<int64_t>(rep.results.size()) - ok;
  const serve::Summary s_ttft = serve::summarize(ttft), s_itl = serve::summarize(itl),
                       s_e2e = serve::summarize(e2e);
  const double secs = std::max(rep.duration, 1e-9);
  const std::string endpoint = o.endpoint == "chat" ? "/v1/chat/completions" : "/v1/completions";
  if (o.json) {
    json errs = json::object();
    for (const auto& [kind, n] : errors) errs[kind] = n;
    const json j = {{"url", t.origin + t.prefix + endpoint},
                    {"model", model},
                    {"clients", std::min(o.clients, o.requests)},
                    {"requests", o.requests},
                    {"ok", ok},
                    {"failed", failed},
                    {"duration_s", rep.duration},
                    {"requests_per_s", static_cast<double>(ok) / secs},
                    {"output_tokens", output_tokens},
                    {"prompt_tokens", prompt_tokens},
                    {"output_tokens_per_s", static_cast<double>(output_tokens) / secs},
                    {"total_tokens_per_s", static_cast<double>(output_tokens + prompt_tokens) / secs},
                    {"ttft_ms", summary_ms(s_ttft)},
                    {"itl_ms", summary_ms(s_itl)},
                    {"e2e_ms", summary_ms(s_e2e)},
                    {"errors", errs},
                    {"first_error", first_error.empty() ? json(nullptr) : json(first_error)}};
    // Replacing invalid UTF-8 (an error body cut mid-character) rather than throwing.
    fmt::print("{}\n", j.dump(-1, ' ', false, json::error_handler_t::replace));
  } else {
    fmt::print("{} requests to {}{}{}, model {}, {} clients\n", o.requests, t.origin, t.prefix, endpoint,
               model, std::min(o.clients, o.requests));
    fmt::print("  {:<18}{} ok, {} failed\n", "requests", ok, failed);
    fmt::print("  {:<18}{:.2f} s\n", "duration", rep.duration);
    fmt::print("  {:<18}{:.2f} req/s\n", "request rate", static_cast<double>(ok) / secs);
    fmt::print("  {:<18}{} ({:.2f} tok/s)\n", "output tokens", output_tokens,
               static_cast<double>(output_tokens) / secs);
    fmt::print("  {:<18}{}\n", "prompt tokens", prompt_tokens);
    fmt::print("  {:<18}{:.2f} tok/s\n", "total tokens",
               static_cast<double>(output_tokens + prompt_tokens) / secs);
    fmt::print("  {:<18}{:>10}{:>10}{:>10}\n", "", "mean", "p50", "p99");
    for (const auto& [name, s] :
         {std::pair{"TTFT (ms)", &s_ttft}, {"ITL (ms)", &s_itl}, {"latency (ms)", &s_e2e}})
      fmt::print("  {:<18}{:>10}{:>10}{:>10}\n", name, ms(s->mean), ms(s->p50), ms(s->p99));
    for (const auto& [kind, n] : errors) fmt::print("  {:<18}{}\n", "errors " + kind, n);
    if (!first_error.empty()) fmt::print("  first error: {}\n", first_error);
  }
  std::fflush(stdout);
  return failed == 0 ? 0 : 1;
}

int run_bench_serve(const BenchServeOptions& o) {
  auto fail = [](const Error& e) {
    fmt::print(stderr, "onecard bench-serve: {}\n", e.message());
    return 1;
  };
  auto target = parse_url(o.url);
  if (!target.ok()) return fail(target.error());
  auto model = resolve_model(o, *target);
  if (!model.ok()) return fail(model.error());
  const Report report = run_clients(o, *target, *model);
  return print_report(o, *target, *model, report);
}

}  // namespace

Runner add_bench_serve(CLI::App& app) {
  auto o = std::make_shared<BenchServeOptions>();
  auto* cmd =
      app.add_subcommand("bench-serve",
                         "Load-test a running OpenAI-compatible server (onecard serve): concurrent streamed "
                         "requests, then throughput, time to first token and inter-token latency");
  cmd->add_option("--url", o->url, "The server's base URL")->capture_default_str();
  cmd->add_option("--clients", o->clients, "Concurrent clients, each sending one request at a time")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--requests", o->requests, "Requests in all")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-tokens", o->max_tokens, "max_tokens of each request")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  auto* prompt = cmd->add_option("--prompt", o->prompt, "The user prompt of every request");
  cmd->add_option("--prompt-words", o->prompt_words,
                  "Else: a prompt of this many random words, new per request")
      ->check(CLI::PositiveNumber)
      ->capture_default_str()
      ->excludes(prompt);
  cmd->add_option("--system", o->system,
                  "A system prompt shared by all requests (exercises the prefix cache)");
  cmd->add_option("--endpoint", o->endpoint, "chat (/v1/chat/completions) or completions (/v1/completions)")
      ->check(CLI::IsMember({"chat", "completions"}))
      ->capture_default_str();
  cmd->add_option("--api-key", o->api_key, "Sent as Authorization: Bearer KEY");
  cmd->add_option("--model", o->model, "The model to request (default: the first of GET /v1/models)");
  cmd->add_option("--temperature", o->temperature, "Sampling temperature")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--seed", o->seed,
                  "Request i is sent with seed SEED+i (and its random prompt derives from it)")
      ->capture_default_str();
  cmd->add_option("--timeout", o->timeout, "Seconds of silence from the server before a request fails")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "Print one JSON object instead of the table");
  cmd->footer(
      "Exit status: 0 when every request succeeded, 1 otherwise (also when the server cannot be reached).");
  return [o] { return run_bench_serve(*o); };
}

}  // namespace onecard::app
