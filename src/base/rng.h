// Deterministic, fast random numbers (xoshiro256**) for synthetic models and tests: the same seed gives the
// same bytes on every machine and compiler, which std::normal_distribution does not promise.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <string_view>

namespace onecard {

inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// FNV-1a, to derive independent streams from a seed and a name.
inline uint64_t hash_string(std::string_view s, uint64_t h = 0xcbf29ce484222325ull) {
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    uint64_t sm = seed;
    for (auto& w : s_) w = splitmix64(sm);
  }
  Rng(uint64_t seed, std::string_view stream) : Rng(hash_string(stream, seed ^ 0x6a09e667f3bcc909ull)) {}

  uint64_t next() {
    const uint64_t result = std::rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = std::rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, 1).
  float uniform() { return static_cast<float>(next() >> 40) * 0x1p-24f; }
  // Uniform in [0, n).
  uint32_t below(uint32_t n) { return static_cast<uint32_t>(((next() >> 32) * n) >> 32); }
  // Standard normal (Box-Muller).
  float normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    float u1 = uniform();
    const float u2 = uniform();
    if (u1 < 1e-12f) u1 = 1e-12f;
    const float r = std::sqrt(-2.0f * std::log(u1));
    const float a = 6.2831853071795864f * u2;
    spare_ = r * std::sin(a);
    has_spare_ = true;
    return r * std::cos(a);
  }

 private:
  uint64_t s_[4];
  float spare_ = 0;
  bool has_spare_ = false;
};

}  // namespace onecard
