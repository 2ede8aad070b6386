// `onecard run`: one completion of a prompt, streamed to stdout, with a timing summary on stderr.
#include <cstdio>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "app/commands.h"
#include "app/model_flags.h"
#include "text/chat_prompt.h"

namespace onecard::app {
namespace {

struct RunOptions {
  ModelFlags model;
  GenerationFlags gen;
  std::string prompt, prompt_file, system;
  bool special = false;
  bool chat = false;
};

int run(const RunOptions& o) {
  auto fail = [](const Error& e) {
    fmt::print(stderr, "onecard run: {}\n", e.message());
    return 1;
  };
  std::string prompt = o.prompt;
  if (!o.prompt_file.empty()) {
    std::ifstream in(o.prompt_file, std::ios::binary);
    if (!in) return fail(make_error("{}: cannot open", o.prompt_file));
    std::stringstream ss;
    ss << in.rdbuf();
    prompt = ss.str();
  }
  auto loaded = load_model(o.model);
  if (!loaded.ok()) return fail(loaded.error());
  std::vector<int32_t> ids;
  if (o.chat) {
    auto tmpl = text::ChatTemplate::from_gguf(loaded->model->file());
    if (!tmpl.ok()) return fail(tmpl.error());
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    if (!o.system.empty()) messages.push_back({{"role", "system"}, {"content", o.system}});
    messages.push_back({{"role", "user"}, {"content", prompt}});
    auto rendered = text::render_chat(tmpl.value(), *loaded->tokenizer, messages);
    if (!rendered.ok()) return fail(rendered.error());
    ids = std::move(rendered->ids);
  } else {
    text::EncodeOptions enc;
    enc.parse_special = o.special;
    auto encoded = loaded->tokenizer->encode(prompt, enc);
    if (!encoded.ok()) return fail(encoded.error().with_context("prompt"));
    ids = std::move(encoded).value();
  }
  const auto engine = make_engine(loaded.value());
  runtime::Session session(*engine);
  auto st = session.set_prompt(ids);
  if (!st.ok()) return fail(st.error());
  auto stats = session.generate(o.gen.options, [](std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  });
  if (!stats.ok()) return fail(stats.error());
  std::fputc('\n', stdout);
  std::fflush(stdout);
  fmt::print(stderr, "onecard run: {}\n", timing_summary(stats.value()));
  return 0;
}

}  // namespace

Runner add_run(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  auto* cmd = app.add_subcommand("run", "Complete a prompt, streaming the text to stdout");
  o->model.add_to(cmd);
  auto* p = cmd->add_option("-p,--prompt", o->prompt, "The prompt");
  auto* f = cmd->add_option("-f,--file", o->prompt_file, "Read the prompt from a file");
  p->excludes(f);
  cmd->add_flag("--special", o->special, "Recognise control tokens written in the prompt (e.g. <｜User｜>)");
  cmd->add_flag("--chat", o->chat, "Send the prompt as a user message through the model's chat template");
  cmd->add_option("--system", o->system, "With --chat: a system message before the prompt");
  o->gen.add_to(cmd);
  cmd->callback([p, f] {
    if (p->count() == 0 && f->count() == 0) throw CLI::RequiredError("--prompt or --file");
  });
  return [o] { return run(*o); };
}

}  // namespace onecard::app
