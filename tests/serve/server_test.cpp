// onecard::serve::Server in this process, over a real Engine and a small synthetic model, spoken to on
// 127.0.0.1 with cpp-httplib's client: every status code and its OpenAI error body, streaming, cancellation
// by a vanished client, the queue limit, and the scheduler's batching under concurrent requests.
//
// Tests that depend on what is running at a given moment do not start the engine's thread: they step the
// engine themselves, so that "one running, one waiting" holds however fast the machine decodes.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <latch>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/run_command.h"
#include "common/test_paths.h"
#include "model/deepseek2.h"
#include "runtime/engine.h"
#include "serve/server.h"
#include "text/chat_prompt.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"
#include "text/tool_calls.h"

namespace onecard::serve {
namespace {

using json = nlohmann::ordered_json;
using namespace std::chrono_literals;

constexpr int kCtx = 256;
constexpr const char* kModelId = "tiny-test";

// The synthetic `tiny` model (a chat template with tools, the DeepSeek tool-call tokens) with an 8192-token
// vocabulary, in which words such as "function" are single tokens (in tiny's 512 they are spelled in bytes,
// which repeat, and a forced tool call needs distinct tokens); made and loaded once per test process.
struct SharedModel {
  std::string error;
  std::unique_ptr<model::DeepSeek2> model;
  std::unique_ptr<text::Tokenizer> tokenizer;
  std::optional<text::ChatTemplate> chat_template;
  text::ToolCallFormat tool_format = text::ToolCallFormat::kNone;
};

SharedModel& shared_model() {
  static SharedModel m = [] {
    SharedModel s;
    const std::string path = test::temp_path("server-tiny.gguf");
    const test::CommandResult gen = test::run_onecard("gen --preset tiny --vocab 8192 --quiet -o " + path);
    if (gen.exit_code != 0) {
      s.error = "onecard gen failed: " + gen.err;
      return s;
    }
    model::LoadOptions o;
    o.n_ctx = kCtx;
    o.n_threads = 2;
    auto loaded = model::DeepSeek2::load(path, o);
    if (!loaded.ok()) {
      s.error = loaded.error().message();
      return s;
    }
    s.model = std::move(loaded.value());
    auto tok = text::Tokenizer::from_gguf(s.model->file());
    if (!tok.ok()) {
      s.error = tok.error().message();
      return s;
    }
    s.tokenizer = std::move(tok.value());
    auto tmpl = text::ChatTemplate::from_gguf(s.model->file());
    if (!tmpl.ok()) {
      s.error = tmpl.error().message();
      return s;
    }
    s.chat_template.emplace(std::move(tmpl.value()));
    s.tool_format = text::detect_tool_call_format(s.chat_template->source());
    return s;
  }();
  return m;
}

// An HTTP answer; status -1 when none came (the error then in `body`).
struct Reply {
  int status = -1;
  std::string body;
  httplib::Headers headers;

  json parsed() const { return json::parse(body, nullptr, false); }
  std::string header(const std::string& key) const {
    const auto it = headers.find(key);
    return it == headers.end() ? std::string() : it->second;
  }
};

Reply to_reply(const httplib::Result& r) {
  Reply out;
  if (!r) {
    out.body = "no response (httplib error " + std::to_string(static_cast<int>(r.error())) + ")";
    return out;
  }
  out.status = r->status;
  out.body = r->body;
  out.headers = r->headers;
  return out;
}

// The OpenAI error body: {"error": {"message", "type", "param", "code"}}, param and code null when they do
// not apply, and a message that names the problem.
void expect_error(const Reply& r, int status, const std::string& type, const std::string& param,
                  const std::string& code, const std::string& message_part) {
  EXPECT_EQ(r.status, status) << r.body;
  const json body = r.parsed();
  ASSERT_TRUE(body.is_object()) << "not a JSON object: " << r.body;
  ASSERT_TRUE(body.contains("error")) << r.body;
  const json& e = body["error"];
  ASSERT_TRUE(e.is_object()) << r.body;
  ASSERT_TRUE(e.contains("message") && e["message"].is_string()) << r.body;
  EXPECT_NE(e["message"].get<std::string>().find(message_part), std::string::npos)
      << "the message does not mention '" << message_part << "': " << r.body;
  ASSERT_TRUE(e.contains("type") && e["type"].is_string()) << r.body;
  EXPECT_EQ(e["type"], type) << r.body;
  ASSERT_TRUE(e.contains("param")) << r.body;
  if (param.empty()) {
    EXPECT_TRUE(e["param"].is_null()) << r.body;
  } else {
    EXPECT_EQ(e["param"], param) << r.body;
  }
  ASSERT_TRUE(e.contains("code")) << r.body;
  if (code.empty()) {
    EXPECT_TRUE(e["code"].is_null()) << r.body;
  } else {
    EXPECT_EQ(e["code"], code) << r.body;
  }
  EXPECT_NE(r.header("Content-Type").find("application/json"), std::string::npos) << r.header("Content-Type");
}

// A Server-Sent Events body taken apart: the JSON of every `data:` event before the final `data: [DONE]`.
struct Sse {
  std::vector<json> chunks;
  bool done = false;
};

// Checks the stream's framing: `data: ` events only (keep-alive comments aside), every one JSON with object
// `object` except the last, which is [DONE].
Sse parse_sse(const std::string& body, const std::string& object) {
  Sse out;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find("\n\n", pos);
    EXPECT_NE(end, std::string::npos) << "an event without its blank line at byte " << pos;
    if (end == std::string::npos) break;
    const std::string event = body.substr(pos, end - pos);
    pos = end + 2;
    if (event.starts_with(":")) continue;  // a keep-alive comment
    EXPECT_FALSE(out.done) << "an event after [DONE]: " << event;
    EXPECT_TRUE(event.starts_with("data: ")) << event;
    if (!event.starts_with("data: ")) continue;
    const std::string data = event.substr(6);
    if (data == "[DONE]") {
      out.done = true;
      continue;
    }
    json chunk = json::parse(data, nullptr, false);
    EXPECT_TRUE(chunk.is_object()) << "not JSON: " << data;
    if (!chunk.is_object()) continue;
    EXPECT_EQ(chunk.value("object", ""), object) << data;
    out.chunks.push_back(std::move(chunk));
  }
  EXPECT_TRUE(out.done) << "the stream does not end with data: [DONE]";
  return out;
}

// A chat body with one user message.
json chat_body(const std::string& user, int max_tokens) {
  return json{{"messages", json::array({json{{"role", "user"}, {"content", user}}})},
              {"max_tokens", max_tokens}};
}

template <class Pred>
bool wait_for(Pred pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

class ServerTest : public testing::Test {
 protected:
  struct Setup {
    ServerOptions server;
    runtime::EngineOptions engine;
    bool run_engine = true;  // false: the test steps the engine itself
  };

  static Setup defaults() {
    Setup s;
    s.server.port = 0;
    s.server.http_threads = 16;
    s.engine.parallel = 3;
    s.engine.kv_type = model::KvType::kF32;
    return s;
  }

  void SetUp() override {
    SharedModel& m = shared_model();
    ASSERT_TRUE(m.error.empty()) << m.error;
    ASSERT_EQ(m.tool_format, text::ToolCallFormat::kV3);
    ASSERT_NO_FATAL_FAILURE(start(defaults()));
  }
  void TearDown() override { shut_down(); }

  void start(const Setup& s) {
    SharedModel& m = shared_model();
    engine_ = std::make_unique<runtime::Engine>(*m.model, *m.tokenizer, s.engine);
    engine_running_ = s.run_engine;
    if (engine_running_) engine_->start();
    server_ = std::make_unique<Server>(s.server);
    const Status st = server_->bind();
    ASSERT_TRUE(st.ok()) << st.error().message();
    port_ = server_->port();
    ASSERT_GT(port_, 0);
    http_ = std::thread([this] { server_->listen(); });
    ServedModel served;
    served.id = kModelId;
    served.engine = engine_.get();
    served.chat_template = &*m.chat_template;
    served.tool_format = m.tool_format;
    server_->set_model(served);
    // Serving once /health answers (stop() before listen() has started would not stop it).
    ASSERT_TRUE(wait_for([this] { return get("/health").status == 200; }, 10s))
        << "the server does not answer";
  }

  void shut_down() {
    if (!server_) return;
    // Whatever a failed test left running ends now, so that no stream holds up the server's stop.
    engine_->stop_admitting(true);
    if (!engine_running_) engine_->start();
    EXPECT_TRUE(engine_->wait_idle(10s));
    server_->stop();
    if (http_.joinable()) http_.join();
    engine_->stop();
    server_.reset();
    engine_.reset();
  }

  void restart(const Setup& s) {
    shut_down();
    start(s);
  }

  // Starts the engine's thread in a test that stepped it by hand so far.
  void run_engine() {
    if (!engine_running_) engine_->start();
    engine_running_ = true;
  }

  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_connection_timeout(5, 0);
    c.set_read_timeout(30, 0);
    c.set_write_timeout(10, 0);
    return c;
  }

  Reply get(const std::string& path, const httplib::Headers& headers = {}) const {
    httplib::Client c = client();
    return to_reply(c.Get(path, headers));
  }
  Reply post(const std::string& path, const std::string& body, const httplib::Headers& headers = {}) const {
    httplib::Client c = client();
    return to_reply(c.Post(path, headers, body, "application/json"));
  }
  Reply chat(const json& body, const httplib::Headers& headers = {}) const {
    return post("/v1/chat/completions", body.dump(), headers);
  }
  Reply complete(const json& body) const { return post("/v1/completions", body.dump()); }

  const text::Tokenizer& tokenizer() const { return *shared_model().tokenizer; }
  std::vector<int32_t> encode(const std::string& text, bool special = false) const {
    text::EncodeOptions o;
    o.add_bos = false;
    o.parse_special = special;
    auto ids = tokenizer().encode(text, o);
    EXPECT_TRUE(ids.ok()) << ids.error().message();
    return ids.ok() ? ids.value() : std::vector<int32_t>{};
  }

  // A whole chat answer: 200, object chat.completion, one choice per `n`.
  static json expect_chat_ok(const Reply& r, int n = 1) {
    EXPECT_EQ(r.status, 200) << r.body;
    json body = r.parsed();
    EXPECT_TRUE(body.is_object()) << r.body;
    if (!body.is_object()) return json::object();
    EXPECT_EQ(body.value("object", ""), "chat.completion") << r.body;
    EXPECT_EQ(body.value("model", ""), kModelId) << r.body;
    EXPECT_TRUE(body["choices"].is_array() && body["choices"].size() == static_cast<size_t>(n)) << r.body;
    return body;
  }

  std::unique_ptr<runtime::Engine> engine_;
  std::unique_ptr<Server> server_;
  std::thread http_;
  bool engine_running_ = false;
  int port_ = 0;
};

// ---- Bad requests ---------------------------------------------------------------------------------------

using ServerBadRequest = ServerTest;

TEST_F(ServerBadRequest, MalformedJsonIs400) {
  expect_error(post("/v1/chat/completions", R"({"messages": [)"), 400, "invalid_request_error", "", "",
               "not valid JSON");
  expect_error(post("/v1/completions", "not json at all"), 400, "invalid_request_error", "", "",
               "not valid JSON");
}

TEST_F(ServerBadRequest, WrongTypeNamesTheField) {
  json body = chat_body("Hello", 4);
  body["max_tokens"] = "ten";
  expect_error(chat(body), 400, "invalid_request_error", "max_tokens", "", "max_tokens");
  json c = {{"prompt", "Hello"}, {"max_tokens", "ten"}};
  expect_error(complete(c), 400, "invalid_request_error", "max_tokens", "", "max_tokens");
}

TEST_F(ServerBadRequest, EmptyMessagesIs400) {
  const json body = {{"messages", json::array()}, {"max_tokens", 4}};
  expect_error(chat(body), 400, "invalid_request_error", "messages", "", "messages");
  const json missing = {{"max_tokens", 4}};
  expect_error(chat(missing), 400, "invalid_request_error", "messages", "", "messages");
}

TEST_F(ServerBadRequest, UnknownFieldIsIgnored) {
  json body = chat_body("Hello", 3);
  body["no_such_field"] = json{{"nested", true}};
  body["another_one"] = 17;
  expect_chat_ok(chat(body));
}

TEST_F(ServerBadRequest, UnknownModelIs404AndAbsentModelIsFine) {
  json body = chat_body("Hello", 3);
  body["model"] = "gpt-17";
  const Reply r = chat(body);
  expect_error(r, 404, "invalid_request_error", "model", "model_not_found", "gpt-17");
  const json c = {{"prompt", "Hello"}, {"max_tokens", 3}, {"model", "gpt-17"}};
  expect_error(complete(c), 404, "invalid_request_error", "model", "model_not_found", "gpt-17");

  body["model"] = kModelId;
  expect_chat_ok(chat(body));
  body.erase("model");
  expect_chat_ok(chat(body));
  body["model"] = nullptr;  // null counts as absent
  expect_chat_ok(chat(body));
}

TEST_F(ServerBadRequest, BodyOverTheLimitIs413) {
  Setup s = defaults();
  s.server.max_body_bytes = 4096;
  ASSERT_NO_FATAL_FAILURE(restart(s));
  const json small = chat_body("Hello", 2);
  expect_chat_ok(chat(small));
  const json big = chat_body(std::string(8000, 'a'), 2);
  expect_error(chat(big), 413, "invalid_request_error", "", "", "4096");
  // The server goes on serving.
  expect_chat_ok(chat(small));
}

TEST_F(ServerBadRequest, PromptOverTheContextIs400) {
  std::string words;
  for (int i = 0; i < kCtx + 40; ++i) words += std::to_string(i % 10) + " ";
  expect_error(chat(chat_body(words, 4)), 400, "invalid_request_error", "messages", "context_length_exceeded",
               "context");
  std::vector<int32_t> ids(kCtx, 300);
  const json c = {{"prompt", ids}, {"max_tokens", 4}};
  expect_error(complete(c), 400, "invalid_request_error", "prompt", "context_length_exceeded", "context");
  // One token short of the context still leaves room for one.
  ids.resize(kCtx - 1);
  const json fits = {{"prompt", ids}, {"max_tokens", 4}};
  const Reply r = complete(fits);
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(ServerBadRequest, TokenOutsideTheVocabularyIs400) {
  const json c = {{"prompt", json::array({1, 2, 1 << 20})}, {"max_tokens", 2}};
  const Reply r = complete(c);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("vocabulary"), std::string::npos) << r.body;
}

// ---- Authentication -------------------------------------------------------------------------------------

using ServerAuth = ServerTest;

TEST_F(ServerAuth, ApiKeyIsRequiredExceptForHealth) {
  Setup s = defaults();
  s.server.api_key = "sekret-key";
  ASSERT_NO_FATAL_FAILURE(restart(s));
  const json body = chat_body("Hello", 2);
  expect_error(chat(body), 401, "authentication_error", "", "invalid_api_key", "API key");
  expect_error(chat(body, {{"Authorization", "Bearer wrong-key"}}), 401, "authentication_error", "",
               "invalid_api_key", "invalid API key");
  expect_error(chat(body, {{"Authorization", "Bearer sekret-ke"}}), 401, "authentication_error", "",
               "invalid_api_key", "invalid API key");
  expect_error(chat(body, {{"Authorization", "sekret-key"}}), 401, "authentication_error", "",
               "invalid_api_key", "API key");
  expect_error(get("/v1/models"), 401, "authentication_error", "", "invalid_api_key", "API key");
  expect_chat_ok(chat(body, {{"Authorization", "Bearer sekret-key"}}));
  const Reply models = get("/v1/models", {{"Authorization", "Bearer sekret-key"}});
  EXPECT_EQ(models.status, 200) << models.body;
  const Reply health = get("/health");
  EXPECT_EQ(health.status, 200) << health.body;
}

// ---- Routes ---------------------------------------------------------------------------------------------

using ServerRoutes = ServerTest;

TEST_F(ServerRoutes, HealthIs503UntilAModelIsSet) {
  ServerOptions o;
  o.port = 0;
  o.http_threads = 4;
  Server loading(o);
  ASSERT_TRUE(loading.bind().ok());
  std::thread t([&loading] { loading.listen(); });
  httplib::Client c("127.0.0.1", loading.port());
  c.set_read_timeout(10, 0);
  Reply r;
  EXPECT_TRUE(wait_for(
      [&] {
        r = to_reply(c.Get("/health"));
        return r.status != -1;
      },
      10s));
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.parsed(), json({{"status", "loading"}})) << r.body;
  const Reply gen =
      to_reply(c.Post("/v1/chat/completions", chat_body("Hello", 2).dump(), "application/json"));
  expect_error(gen, 503, "server_busy", "", "model_loading", "loading");
  EXPECT_FALSE(gen.header("Retry-After").empty());

  ServedModel served;
  served.id = kModelId;
  served.engine = engine_.get();
  served.chat_template = &*shared_model().chat_template;
  loading.set_model(served);
  r = to_reply(c.Get("/health"));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.parsed(), json({{"status", "ok"}})) << r.body;
  loading.stop();
  t.join();

  const Reply ours = get("/health");
  EXPECT_EQ(ours.status, 200);
  EXPECT_EQ(ours.parsed(), json({{"status", "ok"}})) << ours.body;
}

TEST_F(ServerRoutes, UnknownRouteIs404Json) {
  expect_error(get("/v1/nothing"), 404, "not_found_error", "", "", "/v1/nothing");
  expect_error(post("/v2/chat", "{}"), 404, "not_found_error", "", "", "/v2/chat");
}

TEST_F(ServerRoutes, ChatPageModelsAndMetrics) {
  const Reply page = get("/");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.header("Content-Type").find("text/html"), std::string::npos) << page.header("Content-Type");
  EXPECT_NE(page.body.find("<!DOCTYPE html>"), std::string::npos);

  const Reply models = get("/v1/models");
  EXPECT_EQ(models.status, 200) << models.body;
  const json m = models.parsed();
  EXPECT_EQ(m.value("object", ""), "list") << models.body;
  ASSERT_TRUE(m["data"].is_array() && m["data"].size() == 1) << models.body;
  EXPECT_EQ(m["data"][0]["id"], kModelId);
  EXPECT_EQ(m["data"][0]["object"], "model");

  expect_chat_ok(chat(chat_body("Hello", 2)));
  // The request counter is written after the answer is sent: give it a moment.
  Reply metrics;
  EXPECT_TRUE(wait_for(
      [&] {
        metrics = get("/metrics");
        return metrics.body.find(
                   "onecard_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"}") !=
               std::string::npos;
      },
      5s))
      << metrics.body;
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.header("Content-Type").find("text/plain"), std::string::npos);
  EXPECT_NE(metrics.body.find("onecard_generation_tokens_total"), std::string::npos);
  EXPECT_NE(metrics.body.find("onecard_kv_pages_used"), std::string::npos);
}

// ---- Streaming ------------------------------------------------------------------------------------------

using ServerStream = ServerTest;

TEST_F(ServerStream, ChunksEndWithDone) {
  json body = chat_body("Tell me a story", 6);
  body["stream"] = true;
  const Reply r = chat(body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.header("Content-Type").find("text/event-stream"), std::string::npos);
  const Sse sse = parse_sse(r.body, "chat.completion.chunk");
  ASSERT_GE(sse.chunks.size(), 2u) << r.body;
  EXPECT_EQ(sse.chunks.front()["choices"][0]["delta"].value("role", ""), "assistant") << r.body;
  const std::string id = sse.chunks.front().value("id", "");
  EXPECT_TRUE(id.starts_with("chatcmpl-")) << id;
  int finishes = 0;
  for (const json& c : sse.chunks) {
    EXPECT_EQ(c.value("id", ""), id);
    EXPECT_FALSE(c.contains("usage")) << c.dump();
    ASSERT_EQ(c["choices"].size(), 1u) << c.dump();
    if (!c["choices"][0]["finish_reason"].is_null()) ++finishes;
  }
  EXPECT_EQ(finishes, 1) << r.body;
  EXPECT_FALSE(sse.chunks.back()["choices"][0]["finish_reason"].is_null()) << r.body;
}

TEST_F(ServerStream, IncludeUsageEndsWithAUsageChunk) {
  json body = chat_body("Tell me a story", 5);
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  const Reply r = chat(body);
  ASSERT_EQ(r.status, 200) << r.body;
  const Sse sse = parse_sse(r.body, "chat.completion.chunk");
  ASSERT_GE(sse.chunks.size(), 2u) << r.body;
  const json& last = sse.chunks.back();
  EXPECT_TRUE(last["choices"].is_array() && last["choices"].empty()) << last.dump();
  ASSERT_TRUE(last["usage"].is_object()) << last.dump();
  EXPECT_GT(last["usage"]["prompt_tokens"].get<int>(), 0);
  EXPECT_GE(last["usage"]["completion_tokens"].get<int>(), 1);
  EXPECT_LE(last["usage"]["completion_tokens"].get<int>(), 5);
  EXPECT_EQ(last["usage"]["total_tokens"].get<int>(),
            last["usage"]["prompt_tokens"].get<int>() + last["usage"]["completion_tokens"].get<int>());
  for (size_t i = 0; i + 1 < sse.chunks.size(); ++i) {
    EXPECT_TRUE(sse.chunks[i].contains("usage") && sse.chunks[i]["usage"].is_null()) << sse.chunks[i].dump();
  }
}

TEST_F(ServerStream, TwoChoicesEachFinish) {
  json body = chat_body("Tell me a story", 5);
  body["stream"] = true;
  body["n"] = 2;
  const Reply r = chat(body);
  ASSERT_EQ(r.status, 200) << r.body;
  const Sse sse = parse_sse(r.body, "chat.completion.chunk");
  std::set<int> seen;
  std::vector<int> finishes(2, 0);
  for (const json& c : sse.chunks) {
    ASSERT_EQ(c["choices"].size(), 1u) << c.dump();
    const int index = c["choices"][0]["index"].get<int>();
    ASSERT_TRUE(index == 0 || index == 1) << c.dump();
    seen.insert(index);
    if (!c["choices"][0]["finish_reason"].is_null()) ++finishes[index];
  }
  EXPECT_EQ(seen, (std::set<int>{0, 1})) << r.body;
  EXPECT_EQ(finishes, (std::vector<int>{1, 1})) << r.body;

  body["stream"] = false;
  const json whole = expect_chat_ok(chat(body), 2);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(whole["choices"][i]["index"], i);
    EXPECT_TRUE(whole["choices"][i]["finish_reason"].is_string());
  }
}

TEST_F(ServerStream, CompletionsStream) {
  const json body = {{"prompt", "Once upon a time"}, {"max_tokens", 4}, {"stream", true}};
  const Reply r = complete(body);
  ASSERT_EQ(r.status, 200) << r.body;
  const Sse sse = parse_sse(r.body, "text_completion");
  ASSERT_FALSE(sse.chunks.empty());
  EXPECT_TRUE(sse.chunks.back()["choices"][0]["finish_reason"].is_string()) << r.body;
}

// ---- Cancellation and the queue (the engine stepped by hand) --------------------------------------------

using ServerCancel = ServerTest;

TEST_F(ServerCancel, ClientGoneCancelsTheSequence) {
  Setup s = defaults();
  s.engine.parallel = 2;
  s.run_engine = false;
  ASSERT_NO_FATAL_FAILURE(restart(s));
  constexpr int kMaxTokens = 200;
  json body = chat_body("Tell me a long story", kMaxTokens);
  body["stream"] = true;
  body["ignore_eos"] = true;
  std::atomic<bool> got_chunk{false};
  std::atomic<bool> returned{false};
  std::thread reader([&] {
    httplib::Client c = client();
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/chat/completions";
    req.headers = {{"Content-Type", "application/json"}};
    req.body = body.dump();
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
      got_chunk.store(true);
      return false;  // hang up after the first chunk
    };
    c.send(req);
    returned.store(true);
  });
  const uint64_t generated_before = engine_->stats().generated_tokens;
  // Step until the client has its first chunk.
  const bool first = wait_for(
      [&] {
        engine_->step();
        return got_chunk.load();
      },
      10s);
  EXPECT_TRUE(first) << "no chunk reached the client";
  EXPECT_TRUE(wait_for([&] { return returned.load(); }, 10s));
  reader.join();
  ASSERT_TRUE(first);
  // Keep stepping slowly: the server notices the closed socket at a write and cancels the sequence.
  const bool stopped = wait_for(
      [&] {
        engine_->step();
        std::this_thread::sleep_for(5ms);
        return engine_->stats().running == 0 && engine_->stats().waiting == 0;
      },
      4s);
  EXPECT_TRUE(stopped) << "the sequence still runs after its client hung up";
  const runtime::EngineStats st = engine_->stats();
  EXPECT_EQ(st.running, 0);
  EXPECT_EQ(st.pages_used, 0);
  EXPECT_EQ(st.pages_used + st.pages_free + st.pages_cached_idle, st.pages_total);
  EXPECT_LT(st.generated_tokens - generated_before, static_cast<uint64_t>(kMaxTokens))
      << "the request ran to its end instead of being cancelled";

  run_engine();
  expect_chat_ok(chat(chat_body("Hello again", 3)));
}

using ServerQueue = ServerTest;

TEST_F(ServerQueue, FullQueueIs503WithRetryAfterThenServesAgain) {
  Setup s = defaults();
  s.engine.parallel = 1;
  s.engine.max_queue = 1;
  s.server.retry_after_s = 3;
  s.run_engine = false;
  ASSERT_NO_FATAL_FAILURE(restart(s));

  // A streams (running), B waits for the only slot.
  auto streamed = [this](Reply& out, int max_tokens) {
    json body = chat_body("Tell me a long story", max_tokens);
    body["stream"] = true;
    body["ignore_eos"] = true;
    out = chat(body);
  };
  Reply a, b;
  std::thread ta([&] { streamed(a, 40); });
  ASSERT_TRUE(wait_for([&] { return engine_->stats().waiting == 1; }, 10s));
  engine_->step();  // A is admitted and prefilled
  EXPECT_EQ(engine_->stats().running, 1);
  EXPECT_EQ(engine_->stats().waiting, 0);
  std::thread tb([&] { streamed(b, 4); });
  const bool queued = wait_for([&] { return engine_->stats().waiting == 1; }, 10s);
  EXPECT_TRUE(queued);

  if (queued) {
    const Reply c = chat(chat_body("A third one", 4));
    expect_error(c, 503, "server_busy", "", "queue_full", "queue");
    EXPECT_EQ(c.header("Retry-After"), "3");
    const Reply d = complete(json{{"prompt", "A fourth"}, {"max_tokens", 2}});
    expect_error(d, 503, "server_busy", "", "queue_full", "queue");
  }

  run_engine();
  ta.join();
  tb.join();
  ASSERT_EQ(a.status, 200) << a.body;
  ASSERT_EQ(b.status, 200) << b.body;
  const Sse sa = parse_sse(a.body, "chat.completion.chunk");
  const Sse sb = parse_sse(b.body, "chat.completion.chunk");
  EXPECT_EQ(sa.chunks.back()["choices"][0]["finish_reason"], "length") << a.body;
  EXPECT_EQ(sb.chunks.back()["choices"][0]["finish_reason"], "length") << b.body;
  // Served again once the queue drained.
  expect_chat_ok(chat(chat_body("Now there is room", 3)));
}

// Once the engine stops admitting (SIGTERM's grace period), new requests get 503 shutting_down.
TEST_F(ServerQueue, StoppingEngineRefusesNewRequestsWith503) {
  engine_->stop_admitting(false);
  expect_error(chat(chat_body("Too late", 3)), 503, "server_busy", "", "shutting_down", "shutting down");
}

// ---- The scheduler under the server ---------------------------------------------------------------------

using ServerConcurrency = ServerTest;

TEST_F(ServerConcurrency, BadSamplingFailsAloneWhileOthersComplete) {
  constexpr int kGood = 4;
  std::latch go(kGood + 1);
  std::vector<Reply> good(kGood);
  Reply bad;
  std::vector<std::thread> threads;
  for (int i = 0; i < kGood; ++i) {
    threads.emplace_back([&, i] {
      json body = chat_body("Request number " + std::to_string(i), 6);
      if (i % 2 == 1) body["stream"] = true;
      go.arrive_and_wait();
      good[i] = chat(body);
    });
  }
  threads.emplace_back([&] {
    json body = chat_body("A bad one", 6);
    body["top_p"] = 1.5;
    go.arrive_and_wait();
    bad = chat(body);
  });
  for (std::thread& t : threads) t.join();
  expect_error(bad, 400, "invalid_request_error", "top_p", "", "top_p");
  for (int i = 0; i < kGood; ++i) {
    ASSERT_EQ(good[i].status, 200) << "request " << i << ": " << good[i].body;
    if (i % 2 == 1) {
      const Sse sse = parse_sse(good[i].body, "chat.completion.chunk");
      ASSERT_FALSE(sse.chunks.empty());
      EXPECT_TRUE(sse.chunks.back()["choices"][0]["finish_reason"].is_string()) << good[i].body;
    } else {
      const json body = expect_chat_ok(good[i]);
      EXPECT_TRUE(body["choices"][0]["finish_reason"].is_string()) << good[i].body;
    }
  }
  EXPECT_TRUE(engine_->wait_idle(5s));
  EXPECT_EQ(engine_->stats().pages_used, 0);
}

// ---- Completions ----------------------------------------------------------------------------------------

using ServerCompletions = ServerTest;

TEST_F(ServerCompletions, TextAndTokenPrompts) {
  const json text = {{"prompt", "Once upon a time"}, {"max_tokens", 5}, {"temperature", 0}};
  const Reply r = complete(text);
  ASSERT_EQ(r.status, 200) << r.body;
  const json a = r.parsed();
  EXPECT_EQ(a.value("object", ""), "text_completion") << r.body;
  EXPECT_TRUE(a.value("id", "").starts_with("cmpl-")) << r.body;
  ASSERT_EQ(a["choices"].size(), 1u) << r.body;
  EXPECT_TRUE(a["choices"][0]["text"].is_string());
  EXPECT_TRUE(a["choices"][0]["logprobs"].is_null());
  EXPECT_TRUE(a["choices"][0]["finish_reason"].is_string());
  EXPECT_GE(a["usage"]["completion_tokens"].get<int>(), 1);
  EXPECT_LE(a["usage"]["completion_tokens"].get<int>(), 5);

  // The same prompt as token ids (the text endpoint adds BOS as the tokenizer says: so do we).
  text::EncodeOptions enc;
  enc.parse_special = true;
  const std::vector<int32_t> ids = tokenizer().encode("Once upon a time", enc).value();
  const json tokens = {{"prompt", ids}, {"max_tokens", 5}, {"temperature", 0}};
  const Reply t = complete(tokens);
  ASSERT_EQ(t.status, 200) << t.body;
  const json b = t.parsed();
  EXPECT_EQ(b.value("object", ""), "text_completion") << t.body;
  EXPECT_EQ(b["usage"]["prompt_tokens"].get<size_t>(), ids.size()) << t.body;
  EXPECT_EQ(b["usage"]["prompt_tokens"], a["usage"]["prompt_tokens"]);
  EXPECT_EQ(b["choices"][0]["text"], a["choices"][0]["text"]) << "greedy answers to the same prompt differ";
}

TEST_F(ServerCompletions, LegacyLogprobs) {
  const json body = {{"prompt", "Once upon a time"},
                     {"max_tokens", 4},
                     {"logprobs", 2},
                     {"ignore_eos", true},
                     // Greedy: a sampled byte token that ends inside a character would be written as U+FFFD,
                     // which makes the tokens' JSON lengths differ from the byte offsets.
                     {"temperature", 0}};
  const Reply r = complete(body);
  ASSERT_EQ(r.status, 200) << r.body;
  const json a = r.parsed();
  const json& lp = a["choices"][0]["logprobs"];
  ASSERT_TRUE(lp.is_object()) << r.body;
  ASSERT_TRUE(lp["tokens"].is_array()) << r.body;
  ASSERT_TRUE(lp["token_logprobs"].is_array()) << r.body;
  ASSERT_TRUE(lp["top_logprobs"].is_array()) << r.body;
  ASSERT_TRUE(lp["text_offset"].is_array()) << r.body;
  const size_t n = lp["tokens"].size();
  EXPECT_EQ(n, 4u) << r.body;
  EXPECT_EQ(a["usage"]["completion_tokens"].get<size_t>(), n);
  EXPECT_EQ(lp["token_logprobs"].size(), n);
  EXPECT_EQ(lp["top_logprobs"].size(), n);
  EXPECT_EQ(lp["text_offset"].size(), n);
  int64_t offset = 0;
  for (size_t i = 0; i < n; ++i) {
    EXPECT_TRUE(lp["tokens"][i].is_string());
    EXPECT_LE(lp["token_logprobs"][i].get<double>(), 0.0);
    ASSERT_TRUE(lp["top_logprobs"][i].is_object());
    EXPECT_EQ(lp["top_logprobs"][i].size(), 2u) << lp["top_logprobs"][i].dump();
    for (const auto& [token, logprob] : lp["top_logprobs"][i].items()) EXPECT_LE(logprob.get<double>(), 0.0);
    EXPECT_EQ(lp["text_offset"][i].get<int64_t>(), offset);
    offset += static_cast<int64_t>(lp["tokens"][i].get<std::string>().size());
  }
  expect_error(complete(json{{"prompt", "x"}, {"logprobs", 21}}), 400, "invalid_request_error", "logprobs",
               "", "logprobs");
}

// ---- Prefix cache ---------------------------------------------------------------------------------------

using ServerPrefixCache = ServerTest;

TEST_F(ServerPrefixCache, SecondIdenticalRequestIsCachedAndGreedyAnswersMatch) {
  std::string user = "Here is a long question about the weather in many cities of the world, ";
  user += "asked twice so that the second time its prompt comes from the cache. What do you think?";
  json body = chat_body(user, 8);
  body["temperature"] = 0;
  const json first = expect_chat_ok(chat(body));
  EXPECT_TRUE(engine_->wait_idle(5s));
  const json second = expect_chat_ok(chat(body));
  ASSERT_TRUE(first.contains("usage") && second.contains("usage"));
  EXPECT_GE(first["usage"]["prompt_tokens"].get<int>(), 32) << first.dump();
  EXPECT_EQ(first["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(), 0) << first.dump();
  EXPECT_GT(second["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(), 0) << second.dump();
  EXPECT_LT(second["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(),
            second["usage"]["prompt_tokens"].get<int>());
  EXPECT_EQ(first["choices"][0]["message"], second["choices"][0]["message"]);
  EXPECT_EQ(first["usage"]["completion_tokens"], second["usage"]["completion_tokens"]);
}

// ---- Tool calls -----------------------------------------------------------------------------------------

using ServerTools = ServerTest;

// A request that forces the model to answer with exactly `forced` (then EOS): logit biases 100, 96, ... on
// the tokens in order, and a repetition penalty that flattens each one once it is generated.
class ForcedToolCall {
 public:
  // Picks a function name whose call tokenizes into tokens all distinct and none among the prompt's last 64.
  static std::optional<ForcedToolCall> make(const text::Tokenizer& tok, const text::ChatTemplate& tmpl,
                                            std::string& why) {
    for (const std::string name : {"read_file", "get_weather", "run_test", "search"}) {
      ForcedToolCall f;
      f.name_ = name;
      std::string user;
      for (int i = 0; i < 40; ++i) user += std::to_string(i % 10) + " ";  // digits: not in the call
      f.messages_ = json::array({json{{"role", "user"}, {"content", user}}});
      f.tools_ = json::array({json{{"type", "function"},
                                   {"function", json{{"name", name},
                                                     {"description", "Looks it up."},
                                                     {"parameters", json{{"type", "object"}}}}}}});
      auto piece = [&](const std::string& text, bool special) {
        text::EncodeOptions o;
        o.add_bos = false;
        o.parse_special = special;
        const std::vector<int32_t> ids = tok.encode(text, o).value();
        f.forced_.insert(f.forced_.end(), ids.begin(), ids.end());
        return ids.size();
      };
      bool markers_ok = true;
      markers_ok &= piece("<｜tool▁calls▁begin｜>", true) == 1;
      markers_ok &= piece("<｜tool▁call▁begin｜>", true) == 1;
      piece("function", false);
      markers_ok &= piece("<｜tool▁sep｜>", true) == 1;
      piece(name, false);
      piece("\n{}", false);
      markers_ok &= piece("<｜tool▁call▁end｜>", true) == 1;
      markers_ok &= piece("<｜tool▁calls▁end｜>", true) == 1;
      f.forced_.push_back(tok.eos());
      if (!markers_ok) {
        why = "a tool-call marker is not one token";
        return std::nullopt;
      }
      const std::set<int32_t> distinct(f.forced_.begin(), f.forced_.end());
      if (distinct.size() != f.forced_.size()) {
        why += "'" + name + "': repeated tokens:";
        for (int32_t t : f.forced_) why += " [" + std::string(tok.token_piece(t, true)) + "]";
        why += "; ";
        continue;
      }
      const auto prompt = text::render_chat(tmpl, tok, f.messages_, json{{"tools", f.tools_}});
      if (!prompt.ok()) {
        why = prompt.error().message();
        return std::nullopt;
      }
      const std::vector<int32_t>& ids = prompt->ids;
      const size_t from = ids.size() > 64 ? ids.size() - 64 : 0;
      const bool clash = std::any_of(ids.begin() + static_cast<std::ptrdiff_t>(from), ids.end(),
                                     [&](int32_t t) { return distinct.count(t) > 0; });
      if (clash || ids.size() < 64 || ids.size() + f.forced_.size() >= static_cast<size_t>(kCtx)) {
        why += "'" + name + "': the prompt's tail holds a forced token or the prompt does not fit; ";
        continue;
      }
      return f;
    }
    return std::nullopt;
  }

  json body(bool stream) const {
    json bias = json::object();
    for (size_t i = 0; i < forced_.size(); ++i) bias[std::to_string(forced_[i])] = 100.0 - 4.0 * i;
    return json{{"messages", messages_}, {"tools", tools_},           {"max_tokens", forced_.size() + 2},
                {"temperature", 0},      {"repetition_penalty", 1e9}, {"logit_bias", bias},
                {"stream", stream}};
  }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  json messages_, tools_;
  std::vector<int32_t> forced_;
};

TEST_F(ServerTools, ForcedToolCallBecomesToolCalls) {
  std::string why;
  const auto forced = ForcedToolCall::make(tokenizer(), *shared_model().chat_template, why);
  ASSERT_TRUE(forced.has_value()) << why;

  const json whole = expect_chat_ok(chat(forced->body(false)));
  const json& choice = whole["choices"][0];
  EXPECT_EQ(choice["finish_reason"], "tool_calls") << whole.dump();
  const json& message = choice["message"];
  EXPECT_EQ(message["role"], "assistant");
  EXPECT_TRUE(message["content"].is_null() || message["content"] == "") << whole.dump();
  ASSERT_TRUE(message["tool_calls"].is_array() && message["tool_calls"].size() == 1) << whole.dump();
  const json& call = message["tool_calls"][0];
  EXPECT_TRUE(call.value("id", "").starts_with("call_")) << call.dump();
  EXPECT_EQ(call["type"], "function");
  EXPECT_EQ(call["function"]["name"], forced->name()) << call.dump();
  EXPECT_EQ(call["function"]["arguments"], "{}") << call.dump();

  const Reply r = chat(forced->body(true));
  ASSERT_EQ(r.status, 200) << r.body;
  const Sse sse = parse_sse(r.body, "chat.completion.chunk");
  bool first_call_delta = true;
  std::string arguments, content, finish;
  for (const json& c : sse.chunks) {
    const json& ch = c["choices"][0];
    const json& delta = ch["delta"];
    if (delta.contains("content")) content += delta["content"].get<std::string>();
    if (ch["finish_reason"].is_string()) finish = ch["finish_reason"].get<std::string>();
    if (!delta.contains("tool_calls")) continue;
    ASSERT_EQ(delta["tool_calls"].size(), 1u) << c.dump();
    const json& d = delta["tool_calls"][0];
    EXPECT_EQ(d["index"], 0) << c.dump();
    if (first_call_delta) {
      EXPECT_TRUE(d.value("id", "").starts_with("call_")) << c.dump();
      EXPECT_EQ(d["type"], "function") << c.dump();
      EXPECT_EQ(d["function"]["name"], forced->name()) << c.dump();
      first_call_delta = false;
    } else {
      EXPECT_FALSE(d.contains("id")) << c.dump();
    }
    arguments += d["function"].value("arguments", "");
  }
  EXPECT_FALSE(first_call_delta) << "no tool_calls delta: " << r.body;
  EXPECT_EQ(arguments, "{}") << r.body;
  EXPECT_EQ(content, "") << r.body;
  EXPECT_EQ(finish, "tool_calls") << r.body;
}

TEST_F(ServerTools, WithoutToolsTheMarkersAreNotParsed) {
  std::string why;
  const auto forced = ForcedToolCall::make(tokenizer(), *shared_model().chat_template, why);
  ASSERT_TRUE(forced.has_value()) << why;
  json body = forced->body(false);
  body["tool_choice"] = "none";  // the tools are not offered: the answer is plain text
  const json whole = expect_chat_ok(chat(body));
  const json& choice = whole["choices"][0];
  EXPECT_NE(choice["finish_reason"], "tool_calls") << whole.dump();
  EXPECT_FALSE(choice["message"].contains("tool_calls")) << whole.dump();
}

// A client that gives up on a whole (non-streamed) answer frees its sequence too: the server writes a space
// now and then while it waits, and the failed write cancels the request.
TEST_F(ServerCancel, ClientGoneCancelsAWholeRequest) {
  Setup s = defaults();
  s.run_engine = false;
  ASSERT_NO_FATAL_FAILURE(restart(s));
  constexpr int kMaxTokens = 200;
  json body = chat_body("Tell me a long story", kMaxTokens);
  body["ignore_eos"] = true;
  std::atomic<bool> returned{false};
  std::thread reader([&] {
    httplib::Client c = client();
    c.set_read_timeout(0, 200000);  // gives up after 0.2 s
    c.Post("/v1/chat/completions", body.dump(), "application/json");
    returned.store(true);
  });
  EXPECT_TRUE(wait_for([&] { return engine_->stats().waiting == 1; }, 10s));
  const uint64_t generated_before = engine_->stats().generated_tokens;
  engine_->step();
  EXPECT_TRUE(wait_for([&] { return returned.load(); }, 10s));
  reader.join();
  const bool stopped = wait_for(
      [&] {
        engine_->step();
        std::this_thread::sleep_for(5ms);
        return engine_->stats().running == 0;
      },
      4s);
  EXPECT_TRUE(stopped);
  EXPECT_LT(engine_->stats().generated_tokens - generated_before, static_cast<uint64_t>(kMaxTokens))
      << "the request ran to its end after its client left";
}

}  // namespace
}  // namespace onecard::serve
