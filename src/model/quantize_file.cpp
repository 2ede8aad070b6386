#include "model/quantize_file.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <span>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "base/progress.h"
#include "base/thread_pool.h"
#include "gguf/file.h"
#include "gguf/writer.h"
#include "quant/dequantize.h"
#include "quant/quantize.h"

namespace onecard::model {
namespace {

using gguf::GgmlType;

// Output bytes converted per slab: enough rows to keep every thread busy, little memory.
constexpr uint64_t kSlabBytes = 64ull << 20;

// ggml's quantization version, which llama.cpp writes as general.quantization_version.
constexpr uint32_t kQuantizationVersion = 2;

bool is_float(GgmlType t) {
  return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16;
}

// Types below about 3 bits that llama.cpp refuses or warns about without an importance matrix (except for
// the token embeddings and the output head, which it exempts: their rows are looked up or carry no imatrix).
bool wants_imatrix(GgmlType t) {
  switch (t) {
    case GgmlType::Q2_K:
    case GgmlType::IQ1_S:
    case GgmlType::IQ1_M:
    case GgmlType::IQ2_XXS:
    case GgmlType::IQ2_XS:
    case GgmlType::IQ2_S:
    case GgmlType::IQ3_XXS:
    case GgmlType::IQ3_S:
      return true;
    default:
      return false;
  }
}

// Matrices stacked in a tensor: 1 for a matrix, n_expert for [n_per_row, rows, n_expert].
uint64_t matrices_of(const gguf::TensorInfo& t) {
  return t.n_dims >= 2 ? t.n_elements / (t.ne[0] * t.ne[1]) : 1;
}

Status check_entry(const std::string& src, const gguf::TensorInfo& t, const ImatrixEntry& e) {
  const uint64_t n_mat = matrices_of(t);
  if (e.n_per_row != static_cast<int64_t>(t.ne[0]) || e.n_mat != static_cast<int64_t>(n_mat))
    return make_error(
        "{}: the imatrix entry for tensor '{}' is [{}, {}] (columns, matrices), the tensor {} needs [{}, {}]",
        src, t.name, e.n_per_row, e.n_mat, t.shape_string(), t.ne[0], n_mat);
  if (e.sum2.size() != static_cast<size_t>(e.n_per_row * e.n_mat) ||
      e.counts.size() != static_cast<size_t>(e.n_mat))
    return make_error(
        "{}: the imatrix entry for tensor '{}' holds {} sums and {} counts ({} and {} expected)", src, t.name,
        e.sum2.size(), e.counts.size(), e.n_per_row * e.n_mat, e.n_mat);
  return {};
}

// The importance vector of each matrix of a tensor (empty for an expert no token reached).
Result<std::vector<std::vector<float>>> importance_of(const std::string& src, const gguf::TensorInfo& t,
                                                      const ImatrixEntry& e,
                                                      uint64_t& experts_without_tokens) {
  std::vector<std::vector<float>> out;
  for (int64_t m = 0; m < e.n_mat; ++m) {
    out.push_back(mean_squares(e, m));
    if (out.back().empty()) ++experts_without_tokens;
    for (float v : out.back()) {
      if (!std::isfinite(v) || v < 0)
        return make_error("{}: the imatrix entry for tensor '{}' has a value {} in matrix {}", src, t.name, v,
                          m);
    }
  }
  return out;
}

struct TensorPlan {
  GgmlType target;
  const ImatrixEntry* entry = nullptr;
};

struct Plan {
  std::vector<TensorPlan> tensors;
  QuantizeFileReport report;  // the counts and notes known before any data is converted
};

Result<Plan> plan(const std::string& src, const gguf::File& in, const QuantizeFileOptions& o) {
  Plan p;
  QuantizeFileReport& r = p.report;
  const MixContext ctx = mix_context(in, o.imatrix != nullptr);
  std::vector<uint64_t> matched(o.overrides.size(), 0), vectors(o.overrides.size(), 0);
  std::vector<std::string> first_vector(o.overrides.size());
  uint64_t low_bit = 0;
  std::string low_bit_example;
  for (const auto& t : in.tensors()) {
    TensorPlan tp{t.type};
    if (!quant::can_dequantize(t.type)) {  // integer or unknown-to-the-kernels data: carried over as it is
      p.tensors.push_back(tp);
      continue;
    }
    GgmlType want = mix_tensor_type(o.scheme, t.name, t.n_dims, ctx);
    const auto rule = find_override(o.overrides, t.name);
    if (rule) {
      ++matched[*rule];
      if (t.n_dims < 2) {
        if (vectors[*rule]++ == 0) first_vector[*rule] = std::string(t.name);
      } else {
        want = o.overrides[*rule].type;
        ++r.tensors_overridden;
      }
    }
    tp.target = fit_row(want, t.ne[0]);
    if (tp.target != want) {
      ++r.tensors_fallback;
      r.fallbacks.push_back(fmt::format(
          "{}: rows of {}, {} -> {}{}", t.name, t.ne[0], gguf::type_name(want), gguf::type_name(tp.target),
          rule && t.n_dims >= 2 ? " (override '" + o.overrides[*rule].rule + "')" : ""));
    }
    if (tp.target != t.type && !quant::can_quantize(tp.target))
      return make_error("{}: no quantizer for {} (tensor '{}')", src, gguf::type_name(tp.target), t.name);
    if (tp.target != t.type && !is_float(tp.target)) {
      if (o.imatrix != nullptr) {
        tp.entry = o.imatrix->find(t.name);
        if (tp.entry != nullptr) {
          ONECARD_TRY(check_entry(src, t, *tp.entry));
        } else if (t.name != "token_embd.weight") {  // looked up, not multiplied: never has an entry
          ++r.tensors_without_imatrix;
        }
      } else if (wants_imatrix(tp.target) && t.name != "token_embd.weight" && t.name != "output.weight") {
        if (low_bit++ == 0) low_bit_example = fmt::format("{} as {}", t.name, gguf::type_name(tp.target));
      }
    }
    p.tensors.push_back(tp);
  }
  for (size_t i = 0; i < o.overrides.size(); ++i) {
    if (matched[i] == 0)
      r.warnings.push_back(fmt::format("--override '{}' matches no tensor", o.overrides[i].rule));
    if (vectors[i] > 0)
      r.warnings.push_back(
          fmt::format("--override '{}' matches {} vector(s) (e.g. '{}'): kept F32, only "
                      "matrices are quantized",
                      o.overrides[i].rule, vectors[i], first_vector[i]));
  }
  if (low_bit > 0)
    r.warnings.push_back(fmt::format(
        "{} tensor(s) (e.g. {}) get a very low-bit type without an importance matrix: expect a poor model; "
        "make one with `onecard imatrix` and pass --imatrix",
        low_bit, low_bit_example));
  if (o.imatrix != nullptr && r.tensors_without_imatrix > 0)
    r.warnings.push_back(
        fmt::format("the imatrix has no entry for {} quantized tensor(s): quantized without "
                    "importance",
                    r.tensors_without_imatrix));
  return p;
}

void set_imatrix_metadata(gguf::Writer& w, const QuantizeFileOptions& o) {
  if (o.imatrix == nullptr) return;
  if (!o.imatrix_path.empty()) w.set("quantize.imatrix.file", gguf::MetaValue::string(o.imatrix_path));
  if (!o.imatrix->datasets.empty())
    w.set("quantize.imatrix.dataset", gguf::MetaValue::string(o.imatrix->datasets.front()));
  w.set("quantize.imatrix.entries_count",
        gguf::MetaValue::u32(static_cast<uint32_t>(o.imatrix->entries.size())));
  if (o.imatrix->chunk_count > 0)
    w.set("quantize.imatrix.chunks_count", gguf::MetaValue::u32(o.imatrix->chunk_count));
}

// Writes each converted slab on a thread of its own while the pool converts the next, so that the threads
// do not wait for the disk; at most two slabs are in memory, the one written and the one filled.
class SlabWriter {
 public:
  explicit SlabWriter(gguf::Writer& w) : w_(w) {}
  SlabWriter(const SlabWriter&) = delete;
  SlabWriter& operator=(const SlabWriter&) = delete;
  ~SlabWriter() { (void)wait(); }

  // The buffer to fill next: never the one being written.
  std::vector<uint8_t>& buffer() { return slabs_[current_]; }
  // Starts writing `bytes` (the buffer, or memory that outlives the write) once the previous write is done.
  Status submit(std::span<const uint8_t> bytes) {
    ONECARD_TRY(wait());
    thread_ = std::thread([this, bytes] { status_ = w_.write_data(bytes); });
    if (bytes.data() == slabs_[current_].data()) current_ ^= 1;
    return {};
  }
  Status wait() {
    if (thread_.joinable()) thread_.join();
    Status s = status_;
    status_ = {};
    return s;
  }

 private:
  gguf::Writer& w_;
  std::vector<uint8_t> slabs_[2];
  int current_ = 0;
  std::thread thread_;
  Status status_;
};

}  // namespace

Result<QuantizeFileReport> quantize_file(const std::string& src, const std::string& dst,
                                         const QuantizeFileOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  ONECARD_ASSIGN_OR_RETURN(const gguf::File in, gguf::File::open(src));
  ONECARD_ASSIGN_OR_RETURN(Plan p, plan(src, in, o));
  QuantizeFileReport report = std::move(p.report);
  if (o.on_warning) {
    for (const auto& warning : report.warnings) o.on_warning(warning);
  }

  gguf::Writer w(in.alignment());
  for (const auto& kv : in.metadata()) {
    if (kv.key == "general.alignment") continue;  // the writer sets it from its own alignment
    w.set(std::string(kv.key), gguf::MetaValue::from(kv.value));
  }
  w.set("general.quantization_version", gguf::MetaValue::u32(kQuantizationVersion));
  w.set("general.file_type", gguf::MetaValue::u32(scheme_file_type(o.scheme)));
  set_imatrix_metadata(w, o);
  for (size_t i = 0; i < in.tensors().size(); ++i) {
    const auto& t = in.tensors()[i];
    ONECARD_TRY(w.add_tensor(std::string(t.name), {t.dims().begin(), t.dims().end()}, p.tensors[i].target));
  }
  ONECARD_TRY(w.open(dst));

  ThreadPool pool(o.n_threads);
  uint64_t total = 0;
  for (const auto& spec : w.tensors()) total += spec.n_bytes;
  Progress progress("quantize " + std::string(scheme_name(o.scheme)), total, o.progress);
  SlabWriter writer(w);
  for (size_t i = 0; i < in.tensors().size(); ++i) {
    const gguf::TensorInfo& t = in.tensors()[i];
    const GgmlType target = p.tensors[i].target;
    report.bytes_in += t.n_bytes;
    if (target == t.type) {
      ONECARD_TRY(writer.submit(t.bytes()));
      report.bytes_out += t.n_bytes;
      ++report.tensors_copied;
      progress.advance(t.n_bytes);
      continue;
    }
    std::vector<std::vector<float>> importance;
    if (p.tensors[i].entry != nullptr) {
      ONECARD_ASSIGN_OR_RETURN(importance,
                               importance_of(src, t, *p.tensors[i].entry, report.experts_without_tokens));
      ++report.tensors_with_imatrix;
    }
    const int64_t n = static_cast<int64_t>(t.ne[0]);
    const uint64_t rows = t.n_elements / t.ne[0];
    const uint64_t rows_per_matrix = rows / matrices_of(t);
    const uint64_t in_row = gguf::row_bytes(t.type, t.ne[0]), out_row = gguf::row_bytes(target, t.ne[0]);
    const uint64_t slab_rows = std::max<uint64_t>(1, kSlabBytes / out_row);
    const quant::DequantizeFn dequantize = quant::dequantize_fn(t.type);
    for (uint64_t r0 = 0; r0 < rows; r0 += slab_rows) {
      const uint64_t nr = std::min(slab_rows, rows - r0);
      std::vector<uint8_t>& slab = writer.buffer();
      slab.resize(nr * out_row);
      std::atomic<bool> failed{false};
      pool.parallel_for(static_cast<int64_t>(nr), [&](int64_t r, int) {
        thread_local std::vector<float> row;
        row.resize(static_cast<size_t>(n));
        const uint64_t at = r0 + static_cast<uint64_t>(r);
        dequantize(t.data + at * in_row, row.data(), n);
        quant::QuantizeOptions qo;
        if (!importance.empty()) {
          const std::vector<float>& imp = importance[at / rows_per_matrix];
          qo.importance = imp.empty() ? nullptr : imp.data();
        }
        if (!quant::quantize_row(target, row.data(), slab.data() + r * out_row, n, qo).ok()) failed = true;
      });
      if (failed)
        return make_error("{}: tensor '{}' could not be quantized to {}", src, t.name,
                          gguf::type_name(target));
      ONECARD_TRY(writer.submit(slab));
      progress.advance(slab.size());
    }
    report.bytes_out += rows * out_row;
    ++report.tensors_converted;
  }
  ONECARD_TRY(writer.wait());
  ONECARD_TRY(w.finish());
  progress.finish();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace onecard::model
