// `onecard serve`: the OpenAI-compatible HTTP server over one Engine.
//
// The server listens before the model is loaded (GET /health says 503 until then) and serves
// /v1/chat/completions, /v1/completions (streamed as Server-Sent Events ending in `data: [DONE]`, or whole),
// /v1/models, /health, /metrics (Prometheus) and the chat page at /. Every request is handled on a thread of
// its own from a fixed pool; generation happens in the engine's thread, which hands events over through a
// channel, so a slow or vanished client never holds up the others: a client that disconnects mid-stream
// cancels its sequences, which free their pages at the next step.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "base/result.h"
#include "runtime/engine.h"
#include "serve/metrics.h"
#include "serve/openai_request.h"
#include "text/chat_template.h"
#include "text/tool_calls.h"

namespace onecard::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;      // 0: any free port (see Server::port)
  std::string api_key;  // empty: no authentication
  size_t max_body_bytes = 8u << 20;
  int read_timeout_s = 30, write_timeout_s = 30;
  int http_threads = 0;  // 0: enough for every sequence and queued request to stream at once
  ReasoningFormat reasoning = ReasoningFormat::kDeepseek;  // the default when a request does not say
  int retry_after_s = 1;                                   // sent with 503 when the queue is full
};

// What the server answers with once the model is loaded. The engine runs its own thread (Engine::start).
struct ServedModel {
  std::string id;  // the name clients use in `model`
  runtime::Engine* engine = nullptr;
  const text::ChatTemplate* chat_template = nullptr;  // null: /v1/chat/completions answers 400
  text::ToolCallFormat tool_format = text::ToolCallFormat::kNone;
};

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the port (the chosen one with port 0); fails naming the address.
  Status bind();
  int port() const { return port_; }
  // Serves until stop(), in the calling thread.
  void listen();
  // From now on requests are answered by this model.
  void set_model(const ServedModel& model);
  // Stops accepting connections; listen() returns once the open requests are answered.
  void stop();

  ServerMetrics& metrics() { return *metrics_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<ServerMetrics> metrics_;
  int port_ = 0;
};

}  // namespace onecard::serve
