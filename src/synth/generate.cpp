#include "synth/generate.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "base/progress.h"
#include "gguf/writer.h"
#include "synth/metadata.h"
#include "synth/vocab.h"
#include "synth/weights.h"

namespace onecard::synth {
namespace {

constexpr uint64_t kChunkBytes = 4u << 20;

Status write_tensors(const ModelSpec& spec, const std::vector<TensorPlan>& plan, gguf::Writer& w,
                     const std::string& path, bool progress) {
  uint64_t total = 0;
  for (const auto& t : plan) total += t.n_bytes();
  Progress bar("gen " + path, total, progress);
  std::vector<uint8_t> buf;
  for (const auto& t : plan) {
    ONECARD_ASSIGN_OR_RETURN(TensorStream stream, TensorStream::create(spec.seed, t.name, t.type, t.dist));
    const uint64_t chunk = std::max<uint64_t>(kChunkBytes / stream.block_bytes(), 1) * stream.block_bytes();
    buf.resize(static_cast<size_t>(std::min(chunk, t.n_bytes())));
    for (uint64_t done = 0; done < t.n_bytes();) {
      const auto n = static_cast<size_t>(std::min(chunk, t.n_bytes() - done));
      const std::span<uint8_t> piece(buf.data(), n);
      stream.fill(piece);
      ONECARD_TRY(w.write_data(piece));
      bar.advance(n);
      done += n;
    }
  }
  ONECARD_TRY(w.finish());
  bar.finish();
  return {};
}

}  // namespace

Result<std::vector<uint8_t>> tensor_bytes(uint64_t seed, const TensorPlan& t) {
  ONECARD_ASSIGN_OR_RETURN(TensorStream stream, TensorStream::create(seed, t.name, t.type, t.dist));
  std::vector<uint8_t> out(static_cast<size_t>(t.n_bytes()));
  stream.fill(out);
  return out;
}

namespace {

struct Declared {
  std::vector<TensorPlan> plan;
  gguf::Writer writer;
};

Result<Declared> declare(const ModelSpec& spec, bool header_only) {
  ONECARD_ASSIGN_OR_RETURN(const Vocab vocab, build_vocab(spec.n_vocab));
  Declared d{plan_tensors(spec), gguf::Writer()};
  for (auto& [key, value] : build_metadata(spec, vocab)) d.writer.set(key, std::move(value));
  if (header_only) d.writer.set(std::string(gguf::kHeaderOnlyKey), gguf::MetaValue::boolean(true));
  for (const auto& t : d.plan) ONECARD_TRY(d.writer.add_tensor(t.name, t.ne, t.type));
  return d;
}

GenerateResult result(const Declared& d, uint64_t file_bytes, std::chrono::steady_clock::time_point start) {
  GenerateResult r;
  r.file_bytes = file_bytes;
  for (const auto& t : d.plan) r.tensor_bytes += t.n_bytes();
  r.n_tensors = d.plan.size();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace

Result<GenerateResult> generate(const ModelSpec& spec, const std::string& path, bool progress) {
  const auto start = std::chrono::steady_clock::now();
  ONECARD_ASSIGN_OR_RETURN(Declared d, declare(spec, false));
  ONECARD_TRY(d.writer.open(path));
  if (const Status st = write_tensors(spec, d.plan, d.writer, path, progress); !st.ok()) {
    std::remove(path.c_str());
    return st.error();
  }
  return result(d, d.writer.file_size(), start);
}

Result<GenerateResult> generate_header(const ModelSpec& spec, const std::string& path) {
  const auto start = std::chrono::steady_clock::now();
  ONECARD_ASSIGN_OR_RETURN(const Declared d, declare(spec, true));
  const std::vector<uint8_t> header = d.writer.header_bytes();
  std::FILE* out = std::fopen(path.c_str(), "wb");
  if (out == nullptr) return make_error("{}: cannot create: {}", path, std::strerror(errno));
  const bool written = std::fwrite(header.data(), 1, header.size(), out) == header.size();
  const int write_errno = errno;
  if (std::fclose(out) != 0 || !written) {
    std::remove(path.c_str());
    return make_error("{}: write failed: {}", path, std::strerror(written ? errno : write_errno));
  }
  return result(d, header.size(), start);
}

}  // namespace onecard::synth
