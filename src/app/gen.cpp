#include "app/commands.h"

namespace onecard::app {
Runner add_gen(CLI::App& app) {
  app.add_subcommand("gen", "Write a synthetic DeepSeek GGUF");
  return [] { return 1; };
}
}  // namespace onecard::app
