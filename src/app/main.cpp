#include <map>
#include <string>

#include <CLI/CLI.hpp>

#include "app/commands.h"
#include "app/version.h"

int main(int argc, char** argv) {
  CLI::App app{"onecard: DeepSeek-V3/R1 inference from GGUF files on one GPU plus the CPU, or the CPU alone"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("onecard ") + onecard::app::kVersion);

  // Each add_* registers one subcommand (the app's newest) and returns what runs it.
  std::map<const CLI::App*, onecard::app::Runner> runners;
  for (auto add :
       {onecard::app::add_inspect, onecard::app::add_gen, onecard::app::add_logits, onecard::app::add_run,
        onecard::app::add_chat, onecard::app::add_quantize, onecard::app::add_convert,
        onecard::app::add_perplexity, onecard::app::add_imatrix, onecard::app::add_tokenize,
        onecard::app::add_serve, onecard::app::add_bench_serve, onecard::app::add_bench}) {
    auto runner = add(app);
    runners[app.get_subcommands({}).back()] = std::move(runner);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (const auto* sub : app.get_subcommands()) {
    if (auto it = runners.find(sub); it != runners.end()) return it->second();
  }
  return 2;
}
