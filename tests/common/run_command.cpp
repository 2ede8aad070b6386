#include "common/run_command.h"

#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "common/test_paths.h"

namespace onecard::test {

CommandResult run_command(const std::string& command_line) {
  static int counter = 0;
  const std::string err_path = temp_path("stderr-" + std::to_string(counter++) + ".txt");
  CommandResult r;
  FILE* p = popen((command_line + " 2>" + err_path).c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream err(err_path);
  std::stringstream ss;
  ss << err.rdbuf();
  r.err = ss.str();
  return r;
}

CommandResult run_onecard(const std::string& args) {
  return run_command(onecard_binary() + " " + args);
}

}  // namespace onecard::test
