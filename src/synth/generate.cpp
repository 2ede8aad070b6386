#include "synth/generate.h"

#include <chrono>
#include <cstdio>

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

Result<GenerateResult> generate(const ModelSpec& spec, const std::string& path, bool progress) {
  const auto start = std::chrono::steady_clock::now();
  ONECARD_ASSIGN_OR_RETURN(const Vocab vocab, build_vocab(spec.n_vocab));
  const std::vector<TensorPlan> plan = plan_tensors(spec);
  gguf::Writer w;
  for (auto& [key, value] : build_metadata(spec, vocab)) w.set(key, std::move(value));
  for (const auto& t : plan) ONECARD_TRY(w.add_tensor(t.name, t.ne, t.type));

  ONECARD_TRY(w.open(path));
  if (const Status st = write_tensors(spec, plan, w, path, progress); !st.ok()) {
    std::remove(path.c_str());
    return st.error();
  }
  GenerateResult r;
  r.file_bytes = w.file_size();
  r.n_tensors = plan.size();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace onecard::synth
