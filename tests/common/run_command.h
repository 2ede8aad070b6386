// Runs a command line through the shell, for tests of the `onecard` command as a user runs it.
#pragma once

#include <string>

namespace onecard::test {

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

CommandResult run_command(const std::string& command_line);

// `onecard ARGS`: the built binary with the given (shell-quoted by the caller) arguments.
CommandResult run_onecard(const std::string& args);

}  // namespace onecard::test
