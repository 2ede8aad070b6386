#include "base/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace onecard::log {
namespace {

Level level_from_env() {
  const char* v = std::getenv("ONECARD_LOG");
  if (v == nullptr) return Level::kInfo;
  const std::string s(v);
  if (s == "debug") return Level::kDebug;
  if (s == "warn") return Level::kWarn;
  if (s == "error") return Level::kError;
  return Level::kInfo;
}

std::atomic<Level>& current() {
  static std::atomic<Level> l{level_from_env()};
  return l;
}

}  // namespace

Level level() {
  return current().load(std::memory_order_relaxed);
}
void set_level(Level l) {
  current().store(l, std::memory_order_relaxed);
}

void write(Level l, std::string_view message) {
  static const char* names[] = {"debug", "info", "warn", "error"};
  std::fprintf(stderr, "onecard %s: %.*s\n", names[static_cast<int>(l)], static_cast<int>(message.size()),
               message.data());
}

}  // namespace onecard::log
