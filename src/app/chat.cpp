// `onecard chat`: an interactive, multi-turn conversation in the terminal, laid out by the model's chat
// template. Reasoning (DeepSeek-R1's <think> block) is shown dimmed and kept out of the history, as the
// templates expect. /reset starts over; Ctrl-C stops the answer being written, and at the prompt ends the
// program.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>

#include <fmt/format.h>

#include "app/commands.h"
#include "app/model_flags.h"
#include "text/chat_prompt.h"
#include "text/reasoning.h"

namespace onecard::app {
namespace {

struct ChatOptions {
  ModelFlags model;
  GenerationFlags gen;
  std::string system;
};

std::atomic<bool> g_generating{false};
std::atomic<bool> g_cancel{false};

extern "C" void on_interrupt(int) {
  if (g_generating.load()) {
    g_cancel.store(true);
    return;
  }
  std::signal(SIGINT, SIG_DFL);
  std::raise(SIGINT);
}

int run_chat(const ChatOptions& o) {
  auto fail = [](const Error& e) {
    fmt::print(stderr, "onecard chat: {}\n", e.message());
    return 1;
  };
  auto loaded = load_model(o.model);
  if (!loaded.ok()) return fail(loaded.error());
  auto tmpl = text::ChatTemplate::from_gguf(loaded->model->file());
  if (!tmpl.ok()) return fail(tmpl.error());
  const auto engine = make_engine(loaded.value());
  runtime::Session session(*engine);

  const bool tty = isatty(STDOUT_FILENO) != 0;
  const char* dim = tty ? "\x1b[2m" : "";
  const char* plain = tty ? "\x1b[0m" : "";
  nlohmann::ordered_json history = nlohmann::ordered_json::array();
  auto reset = [&] {
    history = nlohmann::ordered_json::array();
    if (!o.system.empty()) history.push_back({{"role", "system"}, {"content", o.system}});
    session.reset();
  };
  reset();
  std::signal(SIGINT, on_interrupt);
  fmt::print(
      stderr,
      "onecard chat: type a message; /reset starts over, /exit or Ctrl-D ends, Ctrl-C stops an answer\n");

  std::string line;
  for (;;) {
    fmt::print("{}> {}", dim, plain);
    std::fflush(stdout);
    if (!std::getline(std::cin, line) || line == "/exit") break;
    if (line == "/reset") {
      reset();
      fmt::print("{}(conversation reset){}\n", dim, plain);
      continue;
    }
    if (line.empty()) continue;
    history.push_back({{"role", "user"}, {"content", line}});
    auto prompt = text::render_chat(tmpl.value(), *loaded->tokenizer, history);
    if (!prompt.ok()) return fail(prompt.error());
    if (auto st = session.set_prompt(prompt->ids); !st.ok()) {
      fmt::print(stderr, "onecard chat: {} (use /reset)\n", st.error().message());
      history.erase(history.end() - 1);
      continue;
    }
    text::ReasoningSplitter split(prompt->opens_reasoning);
    std::string answer;
    bool in_reasoning = false;
    auto show = [&](const text::ReasoningDelta& d) {
      if (!d.reasoning.empty()) {
        fmt::print("{}{}", in_reasoning ? "" : dim, d.reasoning);
        in_reasoning = true;
      }
      if (!d.content.empty()) {
        fmt::print("{}{}", in_reasoning ? fmt::format("{}\n", plain) : "", d.content);
        in_reasoning = false;
        answer += d.content;
      }
      std::fflush(stdout);
    };
    g_cancel = false;
    g_generating = true;
    auto stats = session.generate(
        o.gen.options, [&](std::string_view piece) { show(split.feed(piece)); }, &g_cancel);
    g_generating = false;
    show(split.finish());
    fmt::print("{}\n", plain);
    if (!stats.ok()) return fail(stats.error());
    history.push_back({{"role", "assistant"}, {"content", answer}});
    fmt::print(stderr, "{}[{}]{}\n", dim, timing_summary(stats.value()), plain);
  }
  return 0;
}

}  // namespace

Runner add_chat(CLI::App& app) {
  auto o = std::make_shared<ChatOptions>();
  auto* cmd =
      app.add_subcommand("chat", "Chat with a model in the terminal (its own chat template, multi-turn)");
  o->model.add_to(cmd);
  cmd->add_option("--system", o->system, "A system message that starts the conversation");
  o->gen.options.max_tokens = -1;
  o->gen.add_to(cmd);
  return [o] { return run_chat(*o); };
}

}  // namespace onecard::app
