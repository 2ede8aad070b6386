#include <cstdio>
#include <map>
#include <string>

#include <CLI/CLI.hpp>

#include "app/commands.h"
#include "app/version.h"

int main(int argc, char** argv) {
  CLI::App app{"onecard: DeepSeek-V3/R1 inference from GGUF files on one GPU plus the CPU, or the CPU alone"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("onecard ") + onecard::app::kVersion);
  std::map<CLI::App*, onecard::app::Runner> runners;
  auto add = [&](auto adder) {
    const auto before = app.get_subcommands({});
    auto runner = adder(app);
    const auto after = app.get_subcommands({});
    runners[after.back()] = std::move(runner);
    (void)before;
  };
  add(onecard::app::add_inspect);
  add(onecard::app::add_gen);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (auto* sub : app.get_subcommands()) {
    auto it = runners.find(sub);
    if (it != runners.end()) return it->second();
  }
  return 2;
}
