#include "convert/convert.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "base/progress.h"
#include "base/thread_pool.h"
#include "convert/checkpoint.h"
#include "convert/dequant.h"
#include "convert/hf_tokenizer.h"
#include "convert/metadata.h"
#include "convert/output_type.h"
#include "gguf/writer.h"
#include "quant/quantize.h"

namespace onecard::convert {
namespace {

namespace fs = std::filesystem;

// Floats converted per slab: enough rows to keep every thread busy, little memory.
constexpr uint64_t kSlabFloats = 16ull << 20;

// Drops the mapped pages of a tensor once converted, so that the resident set does not grow to the size of
// the checkpoint (the pages are clean: the kernel would reclaim them anyway, but later and counted as ours).
void release_pages(const StTensor& t) {
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<uintptr_t>(t.data) / page * page;
  const auto end = reinterpret_cast<uintptr_t>(t.data) + t.n_bytes();
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

// One GGUF tensor's rows as floats, from its checkpoint tensors.
class RowSource {
 public:
  RowSource(const Checkpoint& ck, const TensorMap& tm) : tm_(tm) {
    const HfConfig& c = ck.config();
    for (const Source& s : tm.sources) {
      const StTensor* t = ck.find(s.name);
      BlockScales bs;
      bs.block_rows = c.fp8_block_rows;
      bs.block_cols = c.fp8_block_cols;
      if (t->dtype == Dtype::kF8_E4M3 || t->dtype == Dtype::kF8_E5M2)
        bs.scales = ck.find(s.name + "_scale_inv");
      parts_.push_back({t, bs, s.shape.size() == 2 ? s.shape[0] : 1, s.shape.back(), false});
    }
    if (tm.transform != Transform::kRows) {
      // kv_b_proj [H*(nope+v), kv_lora]: split per head into the K rows (nope) and V rows (v).
      nope_ = c.qk_nope_head_dim;
      v_ = c.v_head_dim;
      kv_ = c.kv_lora_rank;
    }
    if (tm.transform == Transform::kKb) {
      // The transpose needs the whole matrix: the only tensor not converted row by row.
      const Part& p = parts_[0];
      whole_.resize(p.rows * p.cols);
      for (uint64_t r = 0; r < p.rows; ++r) read_row(*p.t, p.scales, r, p.cols, whole_.data() + r * p.cols);
    }
  }

  // Row r of the GGUF tensor (ne[0] floats).
  void row(uint64_t r, float* out) const {
    switch (tm_.transform) {
      case Transform::kRows: {
        size_t i = 0;
        while (r >= parts_[i].rows) r -= parts_[i++].rows;
        read_row(*parts_[i].t, parts_[i].scales, r, parts_[i].cols, out);
        return;
      }
      case Transform::kVb: {  // row (h, j) of [kv, v, H]: kv_b row h*(nope+v) + nope + j
        const uint64_t h = r / v_, j = r % v_;
        read_row(*parts_[0].t, parts_[0].scales, h * (nope_ + v_) + nope_ + j, kv_, out);
        return;
      }
      case Transform::kKb: {  // row (h, c) of [nope, kv, H]: column c of head h's K rows
        const uint64_t h = r / kv_, c = r % kv_;
        for (uint64_t i = 0; i < nope_; ++i) out[i] = whole_[(h * (nope_ + v_) + i) * kv_ + c];
        return;
      }
    }
  }

  // Releases the pages of every source whose rows all lie below `rows_done` (all of them for the kv_b
  // transforms, whose one source serves every row), once: a stack of 256 experts is then never mapped in
  // whole.
  void release_done(uint64_t rows_done) {
    uint64_t end = 0;
    for (Part& p : parts_) {
      end += p.rows;
      if (p.released || (tm_.transform == Transform::kRows && end > rows_done)) continue;
      if (tm_.transform != Transform::kRows && rows_done < tm_.n_rows()) continue;
      release_pages(*p.t);
      if (p.scales.scales != nullptr) release_pages(*p.scales.scales);
      p.released = true;
    }
  }

 private:
  struct Part {
    const StTensor* t;
    BlockScales scales;
    uint64_t rows, cols;
    bool released = false;
  };
  const TensorMap& tm_;
  std::vector<Part> parts_;
  uint64_t nope_ = 0, v_ = 0, kv_ = 0;
  std::vector<float> whole_;
};

Status write_all(const Checkpoint& ck, const std::vector<TensorMap>& maps, gguf::Writer& w,
                 const ConvertOptions& o, ConvertReport& report) {
  ThreadPool pool(o.n_threads);
  uint64_t total = 0;
  for (const auto& spec : w.tensors()) total += spec.n_bytes;
  Progress progress("convert " + std::string(model::scheme_name(o.scheme)), total, o.progress);
  std::vector<uint8_t> slab;
  for (size_t ti = 0; ti < maps.size(); ++ti) {
    const TensorMap& tm = maps[ti];
    const gguf::GgmlType type = w.tensors()[ti].type;
    RowSource src(ck, tm);
    const uint64_t n = tm.ne[0], rows = tm.n_rows();
    const uint64_t out_row = gguf::row_bytes(type, n);
    const uint64_t slab_rows = std::max<uint64_t>(1, kSlabFloats / n);
    for (uint64_t r0 = 0; r0 < rows; r0 += slab_rows) {
      const uint64_t nr = std::min(slab_rows, rows - r0);
      slab.resize(nr * out_row);
      std::atomic<bool> failed{false};
      pool.parallel_for(static_cast<int64_t>(nr), [&](int64_t r, int) {
        thread_local std::vector<float> row;
        row.resize(n);
        src.row(r0 + static_cast<uint64_t>(r), row.data());
        if (!quant::quantize_row(type, row.data(), slab.data() + static_cast<uint64_t>(r) * out_row,
                                 static_cast<int64_t>(n))
                 .ok())
          failed = true;
      });
      if (failed)
        return make_error("tensor '{}' could not be converted to {}", tm.name, gguf::type_name(type));
      ONECARD_TRY(w.write_data(slab));
      progress.advance(slab.size());
      src.release_done(r0 + nr);
    }
    report.bytes_out += rows * out_row;
    ++report.tensors;
  }
  ONECARD_TRY(w.finish());
  progress.finish();
  return {};
}

}  // namespace

Result<ConvertReport> convert_checkpoint(const std::string& hf_dir, const std::string& out_path,
                                         const ConvertOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  ONECARD_ASSIGN_OR_RETURN(const Checkpoint ck, Checkpoint::open(hf_dir));
  const HfConfig& c = ck.config();
  const std::vector<TensorMap> maps = map_tensors(c, o.mapping);
  ONECARD_TRY(check_sources(ck, maps, o.mapping));
  ONECARD_ASSIGN_OR_RETURN(const HfTokenizer tok, read_hf_tokenizer(hf_dir, c.vocab_size, o.pre));
  if (tok.tokens.size() != c.vocab_size)
    return make_error("{}: the tokenizer has {} tokens but config.json's vocab_size is {}", hf_dir,
                      tok.tokens.size(), c.vocab_size);

  gguf::Writer w;
  std::string name = fs::path(hf_dir).filename().string();
  if (name.empty()) name = fs::path(hf_dir).parent_path().filename().string();
  put_model_metadata(w, c, o.mapping, o.scheme, name);
  put_tokenizer_metadata(w, tok);
  // The same context `onecard quantize` reads back from the file, so that both give a tensor one type.
  const model::MixContext mix = model::mix_context(file_block_count(c, o.mapping), c.num_attention_heads,
                                                   file_head_count_kv(c, o.mapping), false);
  ConvertReport report;
  for (const TensorMap& tm : maps) {
    const TensorType t = output_type(ck, tm, o.scheme, mix);
    if (!quant::can_quantize(t.type))
      return make_error("no quantizer for {} (tensor '{}')", gguf::type_name(t.type), tm.name);
    ONECARD_TRY(w.add_tensor(tm.name, tm.ne, t.type));
    if (t.fp8_as_f16) ++report.fp8_as_f16;
  }

  // Written under a temporary name so that a failed or interrupted conversion never leaves a file that looks
  // complete.
  const std::string part = out_path + ".part";
  Status st = w.open(part);
  if (st.ok()) st = write_all(ck, maps, w, o, report);
  std::error_code ec;
  if (st.ok()) {
    fs::rename(part, out_path, ec);
    if (ec) st = make_error("{}: cannot rename to {}: {}", part, out_path, ec.message());
  }
  if (!st.ok()) {
    fs::remove(part, ec);
    return st.error().with_context(out_path);
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace onecard::convert
