// Reading the golden arrays (token ids, logits) and comparing logits as the forward-pass tests do: per
// position the relative L2 error against the reference, and whether the argmax agrees.
#pragma once

#include <cstddef>
#include <fstream>
#include <string>
#include <vector>

namespace onecard::test {

// The whole file as an array of T (little-endian, as the golden files are written).
template <class T>
std::vector<T> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  std::vector<T> v(static_cast<size_t>(in.tellg()) / sizeof(T));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(T)));
  return v;
}

struct Agreement {
  double max_rel = 0;  // the worst position's relative L2 error
  double top1 = 0;     // fraction of positions whose argmax agrees
};

// `got` and `want` are [positions, vocab].
Agreement compare_logits(const std::vector<float>& got, const std::vector<float>& want, size_t vocab);

}  // namespace onecard::test
