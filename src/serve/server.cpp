#include "serve/server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <thread>

#include "base/log.h"
#include "serve/chat_page.h"
#include "serve/generation_job.h"
#include "serve/openai_response.h"

namespace onecard::serve {
namespace {

using Clock = std::chrono::steady_clock;

// What the access log and the request counters learn about the request this thread is answering: httplib
// calls the pre-routing handler, the route and then the logger on one thread.
struct AccessInfo {
  Clock::time_point start;
  GenerationJob::Totals totals;
  bool generation = false;
};
thread_local AccessInfo t_access;

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump_json(body), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) {
  send_json(res, e.status, error_body(e));
}

// Compares the whole key whatever the first difference, so that timing does not reveal how much matched.
bool same_secret(std::string_view a, std::string_view b) {
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned>(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

std::string_view status_type(int status) {
  switch (status) {
    case 401:
      return "authentication_error";
    case 404:
      return "not_found_error";
    case 413:
      return "invalid_request_error";
    case 503:
      return "server_busy";
    default:
      return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

std::string_view endpoint_label(const std::string& path) {
  for (std::string_view known :
       {"/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics", "/"}) {
    if (path == known) return known;
  }
  return "other";
}

// Debian's cpp-httplib is built with a listen backlog of 5: a burst of clients overflows it and their
// connections wait for TCP retransmits or are reset. The socket is listened on again with a deep backlog.
class HttpServer : public httplib::Server {
 public:
  void deepen_backlog() { ::listen(svr_sock_.load(), SOMAXCONN); }
};

}  // namespace

struct Server::Impl {
  Impl(ServerOptions o, ServerMetrics& m) : options(std::move(o)), metrics(m) {}

  ServerOptions options;
  ServerMetrics& metrics;
  HttpServer http;
  std::atomic<bool> ready{false};
  ServedModel model;
  int64_t created = unix_now();

  bool authorized(const httplib::Request& req, httplib::Response& res) const {
    if (options.api_key.empty()) return true;
    const std::string header = req.get_header_value("Authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (header.size() > kBearer.size() && header.compare(0, kBearer.size(), kBearer) == 0 &&
        same_secret(std::string_view(header).substr(kBearer.size()), options.api_key)) {
      return true;
    }
    send_error(res, ApiError{401, "authentication_error",
                             header.empty() ? "missing API key: send the header 'Authorization: Bearer KEY'"
                                            : "invalid API key",
                             "", "invalid_api_key"});
    return false;
  }

  bool loaded(httplib::Response& res) const {
    if (ready.load()) return true;
    send_error(res, ApiError{503, "server_busy", "the model is still loading", "", "model_loading"});
    res.set_header("Retry-After", std::to_string(options.retry_after_s));
    return false;
  }

  void generate(const httplib::Request& req, httplib::Response& res, bool chat) {
    if (!authorized(req, res) || !loaded(res)) return;
    t_access.generation = true;
    auto job = GenerationJob::create(model, options, req.body, chat);
    if (!job.ok()) {
      send_error(res, job.error());
      if (job.error().status == 503) res.set_header("Retry-After", std::to_string(options.retry_after_s));
      return;
    }
    std::shared_ptr<GenerationJob> j = std::move(job.value());
    // Whole answers are sent through a content provider too: it writes a space now and then while the answer
    // is being generated (leading whitespace is valid JSON), so that a client that gave up is noticed by a
    // failed write and its sequences are cancelled.
    if (j->streaming()) {
      res.set_header("Cache-Control", "no-cache");
      res.set_header("X-Accel-Buffering", "no");
    }
    res.set_chunked_content_provider(
        j->streaming() ? "text/event-stream" : "application/json",
        [j](size_t, httplib::DataSink& sink) {
          std::string out;
          const bool finished = j->next_text(out);
          if (!out.empty() && !sink.write(out.data(), out.size())) {
            j->cancel();  // the client is gone
            t_access.totals = j->totals();
            return false;
          }
          if (finished) {
            t_access.totals = j->totals();
            sink.done();
          }
          return true;
        },
        [this, j](bool success) {
          if (!success) j->cancel();
          j->record(metrics);
        });
  }

  void routes() {
    http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      if (ready.load()) {
        send_json(res, 200, json{{"status", "ok"}});
      } else {
        send_json(res, 503, json{{"status", "loading"}});
      }
    });
    http.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
      if (!authorized(req, res) || !loaded(res)) return;
      send_json(res, 200, models_list({ModelInfo{model.id, created}}));
    });
    http.Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) {
      if (!authorized(req, res)) return;
      res.set_content(metrics.render(), std::string(kMetricsContentType));
    });
    http.Get("/", [](const httplib::Request&, httplib::Response& res) {
      const std::string_view page = chat_page_html();
      res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
    });
    http.Post("/v1/chat/completions",
              [this](const httplib::Request& req, httplib::Response& res) { generate(req, res, true); });
    http.Post("/v1/completions",
              [this](const httplib::Request& req, httplib::Response& res) { generate(req, res, false); });

    http.set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
      t_access = AccessInfo{Clock::now(), {}, false};
      return httplib::Server::HandlerResponse::Unhandled;
    });
    // Called for every status from 400 on: only responses without a body of their own get one here (unknown
    // routes, bodies over the limit, malformed HTTP).
    http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      std::string message = fmt::format("{} {} failed with status {}", req.method, req.path, res.status);
      if (res.status == 404) message = fmt::format("no route for {} {}", req.method, req.path);
      if (res.status == 413)
        message = fmt::format("the request body exceeds {} bytes", options.max_body_bytes);
      if (res.status == 405) message = fmt::format("{} is not allowed on {}", req.method, req.path);
      send_error(res, ApiError{res.status, std::string(status_type(res.status)), message, "", ""});
    });
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "unknown error";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      log::error("request failed: {}", what);
      send_error(res, ApiError{500, "server_error", "internal error: " + what, "", ""});
    });
    http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t_access.start).count();
      metrics.count_request(endpoint_label(req.path), res.status);
      if (t_access.generation) {
        const GenerationJob::Totals& t = t_access.totals;
        log::info(
            "access method={} path={} status={} prompt_tokens={} cached_tokens={} completion_tokens={} "
            "duration_ms={:.1f} remote={}",
            req.method, req.path, res.status, t.prompt_tokens, t.cached_tokens, t.completion_tokens, ms,
            req.remote_addr);
      } else {
        log::info("access method={} path={} status={} duration_ms={:.1f} remote={}", req.method, req.path,
                  res.status, ms, req.remote_addr);
      }
    });
  }
};

Server::Server(ServerOptions options) : metrics_(std::make_unique<ServerMetrics>()) {
  impl_ = std::make_unique<Impl>(std::move(options), *metrics_);
  Impl& s = *impl_;
  s.routes();
  s.http.set_payload_max_length(s.options.max_body_bytes);
  s.http.set_read_timeout(s.options.read_timeout_s, 0);
  s.http.set_write_timeout(s.options.write_timeout_s, 0);
  s.http.set_keep_alive_timeout(5);
  s.http.set_tcp_nodelay(true);
  const int threads = s.options.http_threads > 0 ? s.options.http_threads : 64;
  s.http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
}

Server::~Server() {
  stop();
}

Status Server::bind() {
  Impl& s = *impl_;
  if (s.options.port == 0) {
    port_ = s.http.bind_to_any_port(s.options.host);
    if (port_ <= 0) return make_error("cannot listen on {} (any port)", s.options.host);
  } else {
    if (!s.http.bind_to_port(s.options.host, s.options.port)) {
      return make_error("cannot listen on {}:{} (in use, or not an address of this machine)", s.options.host,
                        s.options.port);
    }
    port_ = s.options.port;
  }
  s.http.deepen_backlog();
  return {};
}

void Server::listen() {
  impl_->http.listen_after_bind();
}

void Server::set_model(const ServedModel& model) {
  impl_->model = model;
  ServerMetrics& m = *metrics_;
  runtime::Engine* engine = model.engine;
  m.requests_waiting.bind([engine] { return engine->stats().waiting; });
  m.sequences_running.bind([engine] { return engine->stats().running; });
  m.kv_pages_used.bind([engine] { return engine->stats().pages_used; });
  m.kv_pages_free.bind([engine] {
    const runtime::EngineStats s = engine->stats();
    return s.pages_free + s.pages_cached_idle;
  });
  impl_->ready.store(true);
}

void Server::stop() {
  if (impl_ && impl_->http.is_running()) impl_->http.stop();
}

}  // namespace onecard::serve
