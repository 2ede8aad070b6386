// libFuzzer target for the GGUF reader. A rejected input must only yield an error; an accepted one must give
// views that lie inside the input (ASan reports any read outside it, since libFuzzer passes an exactly-sized
// heap copy) and must keep the invariants below, which a user of gguf::File relies on without checking. The
// same entry point runs in the normal test suite on the checked-in corpus (tests/gguf/fuzz_corpus_test.cpp).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "gguf/file.h"
#include "gguf/writer.h"

namespace {

using onecard::gguf::File;
using onecard::gguf::GgmlType;
using onecard::gguf::MetaValue;
using onecard::gguf::TensorInfo;
using onecard::gguf::Value;
using onecard::gguf::ValueType;

// A broken invariant is a reader bug; aborting makes libFuzzer keep the input as a crash.
#define FUZZ_CHECK(cond)                                                                               \
  do {                                                                                                 \
    if (!(cond)) {                                                                                     \
      std::fprintf(stderr, "gguf_reader_fuzz: check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                                    \
    }                                                                                                  \
  } while (0)

// Everything read is folded into a volatile sink so that no load can be optimised away from ASan's view.
uint64_t g_acc = 0;
volatile uint64_t g_sink = 0;

void touch(std::string_view s) {
  for (char c : s) g_acc = g_acc * 31 + static_cast<unsigned char>(c);
}
void touch(std::span<const uint8_t> b) {
  if (b.empty()) return;
  g_acc += b.front();
  g_acc += b.back();
}

template <class T>
void consume(const T& v) {
  if constexpr (std::is_same_v<T, std::string_view>) {
    touch(v);
  } else {
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    g_acc += bits;
  }
}

template <class T>
void try_scalar(const Value& v) {
  auto r = v.as<T>();
  if (r.ok())
    consume(r.value());
  else
    touch(r.error().message());
}

template <class T>
void try_elements(const Value& v) {
  const uint64_t n = v.array_size();
  if (n > 0) {
    for (uint64_t i : {uint64_t{0}, n / 2, n - 1}) {
      auto r = v.element<T>(i);
      if (r.ok())
        consume(r.value());
      else
        touch(r.error().message());
    }
  }
  FUZZ_CHECK(!v.element<T>(n).ok());
}

bool is_integer(ValueType t) {
  switch (t) {
    case ValueType::U8:
    case ValueType::I8:
    case ValueType::U16:
    case ValueType::I16:
    case ValueType::U32:
    case ValueType::I32:
    case ValueType::U64:
    case ValueType::I64:
      return true;
    default:
      return false;
  }
}

void exercise_value(const Value& v, int depth) {
  FUZZ_CHECK(depth <= 16);
  touch(v.type_description());
  const MetaValue copy = MetaValue::from(v);
  FUZZ_CHECK(copy.type == v.type());
  if (!v.is_array()) {
    try_scalar<bool>(v);
    try_scalar<uint8_t>(v);
    try_scalar<int8_t>(v);
    try_scalar<uint16_t>(v);
    try_scalar<int16_t>(v);
    try_scalar<uint32_t>(v);
    try_scalar<int32_t>(v);
    try_scalar<uint64_t>(v);
    try_scalar<int64_t>(v);
    try_scalar<float>(v);
    try_scalar<double>(v);
    try_scalar<std::string_view>(v);
    g_acc += v.scalar_bits();
    if (v.type() == ValueType::STRING) FUZZ_CHECK(v.as<std::string_view>().ok());
    if (v.type() == ValueType::BOOL) FUZZ_CHECK(v.as<bool>().ok());
    if (v.type() == ValueType::F32 || v.type() == ValueType::F64) FUZZ_CHECK(v.as<double>().ok());
    // Every integer converts to int64 or to uint64.
    if (is_integer(v.type())) FUZZ_CHECK(v.as<int64_t>().ok() || v.as<uint64_t>().ok());
    return;
  }
  const uint64_t n = v.array_size();
  FUZZ_CHECK(copy.items.size() == n);
  FUZZ_CHECK(copy.array_type == v.array_type());
  switch (v.array_type()) {
    case ValueType::STRING:
      FUZZ_CHECK(v.strings().size() == n);
      for (std::string_view s : v.strings()) touch(s);
      try_elements<std::string_view>(v);
      try_elements<uint32_t>(v);
      break;
    case ValueType::ARRAY:
      FUZZ_CHECK(v.items().size() == n);
      for (const Value& item : v.items()) {
        FUZZ_CHECK(item.is_array());
        exercise_value(item, depth + 1);
      }
      try_elements<int32_t>(v);
      break;
    default:
      // Reading every element checks the whole packed run against the input's bounds.
      for (uint64_t i = 0; i < n; ++i) g_acc += v.element_bits(i);
      try_elements<bool>(v);
      try_elements<uint8_t>(v);
      try_elements<int16_t>(v);
      try_elements<uint32_t>(v);
      try_elements<int32_t>(v);
      try_elements<uint64_t>(v);
      try_elements<int64_t>(v);
      try_elements<float>(v);
      try_elements<double>(v);
      try_elements<std::string_view>(v);
      {
        auto all = v.to_vector<int64_t>();
        if (all.ok()) FUZZ_CHECK(all.value().size() == n);
        auto floats = v.to_vector<double>();
        if (floats.ok()) FUZZ_CHECK(floats.value().size() == n);
      }
      break;
  }
}

void exercise_tensor(const File& f, std::span<const uint8_t> input, const TensorInfo& t) {
  FUZZ_CHECK(f.tensor(t.name) == &t);
  touch(t.name);
  touch(t.shape_string());
  touch(onecard::gguf::type_name(t.type));
  FUZZ_CHECK(t.n_dims >= 1 && t.n_dims <= onecard::gguf::kMaxDims);
  uint64_t n = 1;
  for (uint64_t d : t.dims()) {
    FUZZ_CHECK(d > 0);
    n *= d;
  }
  FUZZ_CHECK(n == t.n_elements);
  const auto& tt = onecard::gguf::traits(t.type);
  FUZZ_CHECK(t.ne[0] % tt.block_size == 0);
  FUZZ_CHECK(t.n_bytes == t.n_elements / tt.block_size * tt.type_size);
  FUZZ_CHECK(t.offset % f.alignment() == 0);
  const auto begin = reinterpret_cast<uintptr_t>(input.data());
  const auto at = reinterpret_cast<uintptr_t>(t.data);
  FUZZ_CHECK(at == begin + f.data_offset() + t.offset);
  FUZZ_CHECK(at >= begin && t.n_bytes <= input.size() && at - begin <= input.size() - t.n_bytes);
  touch(t.bytes());
}

// Writes what was read back through the writer and reads that again: the writer must accept everything the
// reader does, and the result must hold the same metadata, shapes and bytes.
void round_trip(const File& f) {
  onecard::gguf::Writer w(f.alignment());
  for (const auto& kv : f.metadata()) w.set(std::string(kv.key), MetaValue::from(kv.value));
  for (const auto& t : f.tensors()) {
    FUZZ_CHECK(
        w.add_tensor(std::string(t.name), std::vector<uint64_t>(t.dims().begin(), t.dims().end()), t.type)
            .ok());
  }
  std::vector<uint8_t> bytes = w.header_bytes();
  const size_t data_start = bytes.size();
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    const auto& spec = w.tensors()[i];
    bytes.resize(data_start + spec.offset, 0);
    const auto src = f.tensors()[i].bytes();
    bytes.insert(bytes.end(), src.begin(), src.end());
  }
  auto again = File::parse(bytes, "fuzz round trip");
  if (!again.ok()) {
    std::fprintf(stderr, "gguf_reader_fuzz: the writer's output was rejected: %s\n",
                 again.error().message().c_str());
    std::abort();
  }
  FUZZ_CHECK(again->alignment() == f.alignment());
  FUZZ_CHECK(again->metadata().size() == f.metadata().size());
  for (const auto& kv : f.metadata()) {
    const Value* v = again->find(kv.key);
    FUZZ_CHECK(v != nullptr);
    FUZZ_CHECK(MetaValue::from(*v) == MetaValue::from(kv.value));
  }
  FUZZ_CHECK(again->tensors().size() == f.tensors().size());
  for (const auto& t : f.tensors()) {
    const TensorInfo* u = again->tensor(t.name);
    FUZZ_CHECK(u != nullptr && u->type == t.type && u->ne == t.ne && u->n_dims == t.n_dims);
    FUZZ_CHECK(u->n_bytes == t.n_bytes && std::memcmp(u->data, t.data, t.n_bytes) == 0);
  }
}

}  // namespace

// The header mode (inspection) accepts every file the normal open accepts, with the same tensors and data;
// what it alone accepts has no data pointer at all, and still aligned, disjoint tensor ranges.
void check_header_mode(std::span<const uint8_t> input, const onecard::Result<File>& parsed) {
  auto header = File::parse_header(input, "fuzz");
  if (!header.ok()) {
    FUZZ_CHECK(!parsed.ok());
    FUZZ_CHECK(header.error().message().rfind("fuzz: offset ", 0) == 0);
    return;
  }
  const File& h = header.value();
  if (parsed.ok()) {
    FUZZ_CHECK(h.has_data());
    FUZZ_CHECK(h.tensors().size() == parsed->tensors().size());
    for (size_t i = 0; i < h.tensors().size(); ++i)
      FUZZ_CHECK(h.tensors()[i].data == parsed->tensors()[i].data);
    return;
  }
  FUZZ_CHECK(!h.has_data());
  std::vector<const TensorInfo*> by_offset;
  for (const auto& t : h.tensors()) {
    FUZZ_CHECK(t.data == nullptr);
    FUZZ_CHECK(t.offset % h.alignment() == 0);
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    FUZZ_CHECK(by_offset[i - 1]->offset + by_offset[i - 1]->n_bytes <= by_offset[i]->offset);
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> input(data, size);
  auto parsed = File::parse(input, "fuzz");
  check_header_mode(input, parsed);
  if (!parsed.ok()) {
    // Every rejection names the input and the place of the problem.
    const std::string& m = parsed.error().message();
    FUZZ_CHECK(m.rfind("fuzz: offset ", 0) == 0);
    return 0;
  }
  const File& f = parsed.value();
  FUZZ_CHECK(f.version() == 2 || f.version() == 3);
  FUZZ_CHECK(f.alignment() != 0 && (f.alignment() & (f.alignment() - 1)) == 0);
  FUZZ_CHECK(f.data_offset() % f.alignment() == 0);
  FUZZ_CHECK(f.file_size() == size);

  for (const auto& kv : f.metadata()) {
    touch(kv.key);
    FUZZ_CHECK(!kv.key.empty());
    FUZZ_CHECK(f.find(kv.key) == &kv.value);  // keys are unique and all indexed
    exercise_value(kv.value, 0);
    const std::string key(kv.key);
    auto u = f.get<uint32_t>(key);
    if (!u.ok()) FUZZ_CHECK(u.error().message().find(key) != std::string::npos);
    auto s = f.get_or<std::string_view>(key, "fallback");
    if (s.ok()) touch(s.value());
  }
  // Any key may occur in a file (the fuzzer learns this one from the comparisons), so only an absent one is
  // expected to fail.
  constexpr std::string_view kAbsent = "fuzz.no such key";
  if (!f.has(kAbsent)) {
    FUZZ_CHECK(!f.get<uint32_t>(kAbsent).ok());
    FUZZ_CHECK(f.get_or<uint32_t>(kAbsent, 7).value() == 7);
  }

  if (!f.tensors().empty()) FUZZ_CHECK(f.data_offset() <= size);
  for (const auto& t : f.tensors()) exercise_tensor(f, input, t);
  std::vector<const TensorInfo*> by_offset;
  for (const auto& t : f.tensors()) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    FUZZ_CHECK(by_offset[i - 1]->offset + by_offset[i - 1]->n_bytes <= by_offset[i]->offset);
  }

  // The round trip copies the data into a new buffer; it is bounded so that a file declaring a huge alignment
  // or thousands of tensors does not make one input take seconds.
  if (f.alignment() <= 4096 && f.metadata().size() <= 256 && f.tensors().size() <= 256) round_trip(f);

  g_sink = g_acc;
  return 0;
}
