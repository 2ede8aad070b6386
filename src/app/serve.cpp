// `onecard serve -m MODEL`: the OpenAI-compatible server. It listens at once (GET /health answers 503 while
// the model loads), then serves until SIGINT or SIGTERM: it stops admitting, lets the running requests
// finish for a grace period, cancels what is left, and exits 0.
#include <pthread.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <fmt/format.h>

#include "app/commands.h"
#include "app/model_flags.h"
#include "base/log.h"
#include "serve/server.h"
#include "text/chat_template.h"
#include "text/tool_calls.h"

namespace onecard::app {
namespace {

struct ServeOptions {
  ModelFlags model;
  serve::ServerOptions server;
  runtime::EngineOptions engine;
  std::string alias;
  std::string reasoning = "deepseek";
  double grace_s = 30;
};

int run_serve(ServeOptions o) {
  auto fail = [](const Error& e) {
    fmt::print(stderr, "onecard serve: {}\n", e.message());
    return 1;
  };
  if (o.server.api_key.empty()) {
    if (const char* key = std::getenv("ONECARD_API_KEY"); key != nullptr) o.server.api_key = key;
  }
  o.server.reasoning =
      o.reasoning == "none" ? serve::ReasoningFormat::kNone : serve::ReasoningFormat::kDeepseek;
  if (o.server.http_threads == 0)
    o.server.http_threads = std::max(16, o.engine.parallel + o.engine.max_queue / 4 + 8);

  // Signals go to one thread that waits for them; every other thread (started after this) has them blocked.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  serve::Server server(o.server);
  if (auto st = server.bind(); !st.ok()) return fail(st.error());
  std::thread http([&server] { server.listen(); });
  log::info("listening on http://{}:{} (GET /health answers 503 until the model is loaded)", o.server.host,
            server.port());

  auto loaded = load_model(o.model);
  if (!loaded.ok()) {
    server.stop();
    http.join();
    return fail(loaded.error());
  }
  auto tmpl = text::ChatTemplate::from_gguf(loaded->model->file());
  if (!tmpl.ok()) log::warn("{}; /v1/chat/completions is unavailable", tmpl.error().message());
  o.engine.kv_type = loaded->kv_type;
  runtime::Engine engine(*loaded->model, *loaded->tokenizer, o.engine);
  engine.start();
  serve::ServedModel served;
  served.id = o.alias.empty() ? std::filesystem::path(o.model.path).stem().string() : o.alias;
  served.engine = &engine;
  served.chat_template = tmpl.ok() ? &tmpl.value() : nullptr;
  served.tool_format =
      tmpl.ok() ? text::detect_tool_call_format(tmpl->source()) : text::ToolCallFormat::kNone;
  server.set_model(served);
  log::info("serving '{}' on http://{}:{} ({} sequences at once, context {}, tool calls: {})", served.id,
            o.server.host, server.port(), engine.options().parallel, engine.n_ctx(),
            text::tool_call_format_name(served.tool_format));

  int sig = 0;
  sigwait(&signals, &sig);
  log::info("{}: no new requests; waiting up to {:.0f} s for {} running and {} queued",
            sig == SIGINT ? "SIGINT" : "SIGTERM", o.grace_s, engine.stats().running, engine.stats().waiting);
  engine.stop_admitting(false);
  // A second signal cuts the grace period short.
  std::thread second([&] {
    int again = 0;
    sigwait(&signals, &again);
    engine.stop_admitting(true);
  });
  second.detach();
  if (!engine.wait_idle(std::chrono::milliseconds(static_cast<int64_t>(o.grace_s * 1000)))) {
    log::warn("grace period over: cancelling what still runs");
    engine.stop_admitting(true);
    engine.wait_idle(std::chrono::seconds(10));
  }
  // Streams end with their last events; give their writers a moment before closing the sockets.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  server.stop();
  http.join();
  engine.stop();
  log::info("stopped");
  return 0;
}

}  // namespace

Runner add_serve(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* cmd =
      app.add_subcommand("serve", "OpenAI-compatible HTTP server (chat, completions, models, metrics)");
  o->model.add_to(cmd);
  cmd->add_option("--host", o->server.host, "Address to listen on (127.0.0.1: this machine only)")
      ->capture_default_str();
  cmd->add_option("--port", o->server.port, "Port (0: any free one)")->capture_default_str();
  cmd->add_option("--api-key", o->server.api_key,
                  "Require 'Authorization: Bearer KEY' (default: $ONECARD_API_KEY; empty: no key)");
  cmd->add_option("--alias", o->alias, "Model name clients use (default: the file name without .gguf)");
  cmd->add_option("--parallel", o->engine.parallel, "Sequences decoded at once")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--queue", o->engine.max_queue, "Requests waiting for a sequence; more get 503")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option(
         "--kv-pages", o->engine.kv_pages,
         "KV cache pages in all (0: enough for --parallel full contexts); spare pages keep the prefix "
         "cache")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--page-tokens", o->engine.page_tokens, "Tokens per KV page")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--prefill-chunk", o->engine.prefill_chunk,
                  "Prompt tokens evaluated per step beside the running sequences (0: --batch-size)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option(
         "--reasoning-format", o->reasoning,
         "deepseek: thinking in reasoning_content; none: left in content (a request's reasoning_format "
         "wins)")
      ->capture_default_str()
      ->check(CLI::IsMember({"deepseek", "none"}));
  cmd->add_option("--max-body", o->server.max_body_bytes, "Largest request body in bytes (413 above)")
      ->capture_default_str();
  cmd->add_option("--timeout", o->server.read_timeout_s, "Seconds a client may take to send or receive")
      ->capture_default_str()
      ->each([o](const std::string&) { o->server.write_timeout_s = o->server.read_timeout_s; });
  cmd->add_option("--http-threads", o->server.http_threads,
                  "Threads answering HTTP requests (0: enough for every running and queued stream)")
      ->capture_default_str();
  cmd->add_option("--grace", o->grace_s, "Seconds to finish running requests after SIGINT/SIGTERM")
      ->capture_default_str();
  return [o] { return run_serve(*o); };
}

}  // namespace onecard::app
