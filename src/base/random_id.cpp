#include "base/random_id.h"

#include <cstdint>
#include <random>

namespace onecard {

std::string random_id(std::string_view prefix, size_t length) {
  static constexpr std::string_view kAlphabet =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  thread_local std::mt19937_64 rng{(static_cast<uint64_t>(std::random_device{}()) << 32) ^
                                   std::random_device{}()};
  std::uniform_int_distribution<size_t> pick(0, kAlphabet.size() - 1);
  std::string id(prefix);
  for (size_t i = 0; i < length; ++i) id += kAlphabet[pick(rng)];
  return id;
}

}  // namespace onecard
