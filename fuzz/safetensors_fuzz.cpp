// libFuzzer target for the safetensors reader of `onecard convert`. A rejected input must only yield an error
// naming the input; an accepted one must give tensors whose bytes lie inside the input (ASan reports any read
// outside it, since libFuzzer passes an exactly-sized heap copy), never overlap, and hold exactly shape ×
// dtype size bytes, which the conversion relies on without checking. The same entry point runs in the normal
// test suite on the checked-in seeds (tests/convert/fuzz_corpus_test.cpp).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "convert/dequant.h"
#include "convert/safetensors.h"

namespace {

using onecard::convert::Dtype;
using onecard::convert::SafetensorsFile;
using onecard::convert::StTensor;

// A broken invariant is a reader bug; aborting makes libFuzzer keep the input as a crash.
#define FUZZ_CHECK(cond)                                                                               \
  do {                                                                                                 \
    if (!(cond)) {                                                                                     \
      std::fprintf(stderr, "safetensors_fuzz: check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                                    \
    }                                                                                                  \
  } while (0)

volatile float g_sink = 0;

bool is_float(Dtype d) {
  return d == Dtype::kF32 || d == Dtype::kF16 || d == Dtype::kBF16 || d == Dtype::kF64 ||
         d == Dtype::kF8_E4M3 || d == Dtype::kF8_E5M2;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> input(data, size);
  auto parsed = SafetensorsFile::parse(input, "fuzz");
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.error().message().rfind("fuzz: ", 0) == 0);
    return 0;
  }
  const SafetensorsFile& f = parsed.value();
  const auto begin = reinterpret_cast<uintptr_t>(data);
  std::vector<const StTensor*> by_offset;
  for (const StTensor& t : f.tensors()) {
    FUZZ_CHECK(f.find(t.name) == &t);
    FUZZ_CHECK(t.n_elements() * onecard::convert::dtype_size(t.dtype) == t.n_bytes());
    const auto at = reinterpret_cast<uintptr_t>(t.data);
    FUZZ_CHECK(at >= begin && at - begin <= size && t.n_bytes() <= size - (at - begin));
    by_offset.push_back(&t);
    // Reading the first and last row of a float tensor touches both ends of its range.
    if (is_float(t.dtype) && t.n_elements() > 0 && !t.shape.empty()) {
      const uint64_t cols = t.shape.back(), rows = t.n_elements() / cols;
      std::vector<float> row(cols);
      for (uint64_t r : {uint64_t{0}, rows - 1}) {
        onecard::convert::read_row(t, {}, r, cols, row.data());
        g_sink = g_sink + row.front() + row.back();
      }
    }
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const StTensor* a, const StTensor* b) { return a->begin < b->begin; });
  const StTensor* last = nullptr;
  for (const StTensor* t : by_offset) {
    if (t->n_bytes() == 0) continue;
    if (last != nullptr) FUZZ_CHECK(last->end <= t->begin);
    if (last == nullptr || t->end > last->end) last = t;
  }
  return 0;
}
