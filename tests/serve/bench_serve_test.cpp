// `onecard bench-serve` against a fake OpenAI server in this process, on 127.0.0.1: it streams canned SSE so
// that counts and the request bodies can be checked exactly.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/run_command.h"
#include "serve/sse_reader.h"

namespace onecard::serve {
namespace {

using json = nlohmann::json;

class FakeServer {
 public:
  FakeServer() {
    server_.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
      if (!authorized(req, res)) return;
      res.set_content(R"({"object":"list","data":[{"id":"fake-model","object":"model"}]})",
                      "application/json");
    });
    auto stream = [this](const httplib::Request& req, httplib::Response& res) {
      if (!authorized(req, res)) return;
      const json body = json::parse(req.body, nullptr, false);
      {
        std::lock_guard lock(mu_);
        bodies_.push_back(body);
      }
      if (fail_status_ != 0) {
        res.status = fail_status_;
        res.set_content(R"({"error":{"message":"queue full","type":"server_error"}})", "application/json");
        return;
      }
      const bool chat = req.path == "/v1/chat/completions";
      const bool usage = body.value("stream_options", json::object()).value("include_usage", false);
      const Fault fault = fault_;
      res.set_chunked_content_provider(
          "text/event-stream", [chat, usage, fault](size_t, httplib::DataSink& sink) {
            auto send = [&](const json& chunk) {
              const std::string event = sse_event(chunk.dump());
              sink.write(event.data(), event.size());
            };
            auto piece = [&](const char* field, const char* text) {
              json c = {{"object", chat ? "chat.completion.chunk" : "text_completion"}};
              if (chat) {
                c["choices"] = json::array({{{"index", 0}, {"delta", {{field, text}}}}});
              } else {
                c["choices"] = json::array({{{"index", 0}, {"text", text}}});
              }
              send(c);
            };
            // A role-only first chunk carries no text: it must not count as the first token.
            if (chat) send({{"choices", json::array({{{"index", 0}, {"delta", {{"role", "assistant"}}}}})}});
            for (const char* text : {"Hel", "lo", " there", "!"}) {
              std::this_thread::sleep_for(std::chrono::milliseconds(5));
              piece(chat && text[0] == 'H' ? "reasoning_content" : "content", text);
              if (fault == Fault::kErrorEvent) {
                send({{"error", {{"message", "out of KV pages"}}}});
                break;
              }
            }
            if (fault == Fault::kNoDone) {
              sink.done();
              return true;
            }
            if (usage)
              send({{"choices", json::array()}, {"usage", {{"prompt_tokens", 9}, {"completion_tokens", 5}}}});
            const std::string done = sse_event("[DONE]");
            sink.write(done.data(), done.size());
            sink.done();
            return true;
          });
    };
    server_.Post("/v1/chat/completions", stream);
    server_.Post("/v1/completions", stream);
    // Without it Nagle's algorithm coalesces the small chunks and the gaps between them vanish.
    server_.set_tcp_nodelay(true);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() before the accept loop has started would be lost and leave join() waiting forever.
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeServer() {
    server_.stop();
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<json> bodies() {
    std::lock_guard lock(mu_);
    return bodies_;
  }
  void fail_with(int status) { fail_status_ = status; }
  enum class Fault { kNone, kErrorEvent, kNoDone };
  void fault_streams(Fault f) { fault_ = f; }
  void require_key(std::string key) { key_ = std::move(key); }

 private:
  bool authorized(const httplib::Request& req, httplib::Response& res) const {
    if (key_.empty() || req.get_header_value("Authorization") == "Bearer " + key_) return true;
    res.status = 401;
    res.set_content(R"({"error":{"message":"bad API key"}})", "application/json");
    return false;
  }

  httplib::Server server_;
  int port_ = -1;
  std::thread thread_;
  std::mutex mu_;
  std::vector<json> bodies_;
  std::atomic<int> fail_status_{0};
  std::atomic<Fault> fault_{Fault::kNone};
  std::string key_;
};

json run_json(const std::string& args, test::CommandResult* raw = nullptr) {
  const test::CommandResult r = test::run_onecard("bench-serve --json " + args);
  if (raw) *raw = r;
  EXPECT_FALSE(r.out.empty()) << r.err;
  return json::parse(r.out, nullptr, false);
}

TEST(BenchServe, ChatRunCountsTokensAndLatencies) {
  FakeServer server;
  test::CommandResult raw;
  const json j = run_json(
      "--url " + server.url() + " --clients 3 --requests 7 --max-tokens 16 --system 'Be brief.' --seed 100",
      &raw);
  EXPECT_EQ(raw.exit_code, 0) << raw.err;
  EXPECT_EQ(j["ok"], 7);
  EXPECT_EQ(j["failed"], 0);
  EXPECT_EQ(j["model"], "fake-model");
  EXPECT_EQ(j["clients"], 3);
  EXPECT_EQ(j["output_tokens"], 7 * 5);  // from usage, not the 4 text chunks
  EXPECT_EQ(j["prompt_tokens"], 7 * 9);
  EXPECT_GT(j["output_tokens_per_s"].get<double>(), 0);
  // Three sleeps of 5 ms separate the four text chunks; the first follows one.
  EXPECT_GE(j["itl_ms"]["p50"].get<double>(), 4.0);
  EXPECT_GE(j["ttft_ms"]["mean"].get<double>(), 4.0);
  EXPECT_GE(j["e2e_ms"]["p99"].get<double>(), j["ttft_ms"]["p99"].get<double>());

  const auto bodies = server.bodies();
  ASSERT_EQ(bodies.size(), 7u);
  std::vector<uint64_t> seeds;
  for (const auto& b : bodies) {
    EXPECT_EQ(b["model"], "fake-model");
    EXPECT_EQ(b["stream"], true);
    EXPECT_EQ(b["stream_options"]["include_usage"], true);
    EXPECT_EQ(b["max_tokens"], 16);
    ASSERT_EQ(b["messages"].size(), 2u);
    EXPECT_EQ(b["messages"][0]["role"], "system");
    EXPECT_EQ(b["messages"][0]["content"], "Be brief.");
    EXPECT_EQ(b["messages"][1]["role"], "user");
    seeds.push_back(b["seed"].get<uint64_t>());
  }
  std::sort(seeds.begin(), seeds.end());
  EXPECT_EQ(seeds, (std::vector<uint64_t>{100, 101, 102, 103, 104, 105, 106}));
}

TEST(BenchServe, RandomPromptsDifferAndHaveTheAskedLength) {
  FakeServer server;
  run_json("--url " + server.url() + " --requests 2 --clients 1 --prompt-words 12");
  const auto bodies = server.bodies();
  ASSERT_EQ(bodies.size(), 2u);
  const std::string a = bodies[0]["messages"][0]["content"], b = bodies[1]["messages"][0]["content"];
  EXPECT_NE(a, b);
  EXPECT_EQ(std::count(a.begin(), a.end(), ' '), 11);
}

TEST(BenchServe, CompletionsEndpointTableOutput) {
  FakeServer server;
  const test::CommandResult r = test::run_onecard(
      "bench-serve --url " + server.url() + "/v1/ --endpoint completions --requests 2 --prompt hi --model m");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("2 ok, 0 failed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("TTFT (ms)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/v1/completions"), std::string::npos) << r.out;
  const auto bodies = server.bodies();
  ASSERT_EQ(bodies.size(), 2u);
  EXPECT_EQ(bodies[0]["prompt"], "hi");
  EXPECT_EQ(bodies[0]["model"], "m");
}

TEST(BenchServe, HttpErrorsAreCountedByStatusAndFailTheRun) {
  FakeServer server;
  server.fail_with(503);
  test::CommandResult raw;
  const json j = run_json("--url " + server.url() + " --requests 3", &raw);
  EXPECT_EQ(raw.exit_code, 1);
  EXPECT_EQ(j["ok"], 0);
  EXPECT_EQ(j["failed"], 3);
  EXPECT_EQ(j["errors"]["HTTP 503"], 3);
  EXPECT_EQ(j["first_error"], "HTTP 503: queue full");
}

TEST(BenchServe, BrokenStreamsAreFailures) {
  for (auto fault : {FakeServer::Fault::kErrorEvent, FakeServer::Fault::kNoDone}) {
    FakeServer server;
    server.fault_streams(fault);
    test::CommandResult raw;
    const json j = run_json("--url " + server.url() + " --requests 2", &raw);
    EXPECT_EQ(raw.exit_code, 1);
    EXPECT_EQ(j["failed"], 2);
    EXPECT_EQ(j["errors"]["stream"], 2);
    EXPECT_EQ(j["first_error"], fault == FakeServer::Fault::kErrorEvent
                                    ? "stream: out of KV pages"
                                    : "stream: stream ended before data: [DONE]");
  }
}

TEST(BenchServe, SendsTheApiKey) {
  FakeServer server;
  server.require_key("sesame");
  const test::CommandResult denied = test::run_onecard("bench-serve --url " + server.url() + " --requests 1");
  EXPECT_EQ(denied.exit_code, 1);
  EXPECT_NE(denied.err.find("bad API key"), std::string::npos) << denied.err;
  EXPECT_NE(denied.err.find("--api-key"), std::string::npos) << denied.err;
  test::CommandResult raw;
  const json j = run_json("--url " + server.url() + " --requests 1 --api-key sesame", &raw);
  EXPECT_EQ(raw.exit_code, 0) << raw.err;
  EXPECT_EQ(j["ok"], 1);
}

TEST(BenchServe, NoServerIsAClearError) {
  std::string url;
  {
    FakeServer gone;  // a port that was free a moment ago and now has nobody listening
    url = gone.url();
  }
  const test::CommandResult r = test::run_onecard("bench-serve --url " + url + " --requests 1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_NE(r.err.find("cannot reach " + url), std::string::npos) << r.err;
}

TEST(BenchServe, RejectsBadUrls) {
  const test::CommandResult r = test::run_onecard("bench-serve --url ftp://127.0.0.1:1 --requests 1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("only http:// and https://"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace onecard::serve
