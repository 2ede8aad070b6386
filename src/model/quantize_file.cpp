#include "model/quantize_file.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <vector>

#include "base/progress.h"
#include "base/thread_pool.h"
#include "gguf/file.h"
#include "gguf/writer.h"
#include "quant/dequantize.h"
#include "quant/quantize.h"

namespace onecard::model {
namespace {

// Output bytes converted per slab: enough rows to keep every thread busy, little memory.
constexpr uint64_t kSlabBytes = 64ull << 20;

}  // namespace

Result<QuantizeFileReport> quantize_file(const std::string& src, const std::string& dst,
                                         const QuantizeFileOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  ONECARD_ASSIGN_OR_RETURN(const gguf::File in, gguf::File::open(src));
  gguf::Writer w(in.alignment());
  for (const auto& kv : in.metadata()) {
    if (kv.key == "general.alignment") continue;  // the writer sets it from its own alignment
    w.set(std::string(kv.key), gguf::MetaValue::from(kv.value));
  }
  w.set("general.file_type", gguf::MetaValue::u32(scheme_file_type(o.scheme)));

  std::vector<gguf::GgmlType> targets;
  for (const auto& t : in.tensors()) {
    gguf::GgmlType target = scheme_tensor_type(o.scheme, t.name, t.ne[0], t.n_dims);
    if (!quant::can_dequantize(t.type)) {
      target = t.type;  // integer or unknown-to-the-kernels data: carried over as it is
    } else if (target != t.type && !quant::can_quantize(target)) {
      return make_error("{}: no quantizer for {} (tensor '{}')", src, gguf::type_name(target), t.name);
    }
    targets.push_back(target);
    ONECARD_TRY(w.add_tensor(std::string(t.name), {t.dims().begin(), t.dims().end()}, target));
  }
  ONECARD_TRY(w.open(dst));

  ThreadPool pool(o.n_threads);
  QuantizeFileReport report;
  uint64_t total = 0;
  for (const auto& spec : w.tensors()) total += spec.n_bytes;
  Progress progress("quantize " + std::string(scheme_name(o.scheme)), total, o.progress);
  std::vector<uint8_t> slab;
  for (size_t i = 0; i < in.tensors().size(); ++i) {
    const gguf::TensorInfo& t = in.tensors()[i];
    const gguf::GgmlType target = targets[i];
    report.bytes_in += t.n_bytes;
    if (target == t.type) {
      ONECARD_TRY(w.write_data(t.bytes()));
      report.bytes_out += t.n_bytes;
      ++report.tensors_copied;
      progress.advance(t.n_bytes);
      continue;
    }
    const int64_t n = static_cast<int64_t>(t.ne[0]);
    const uint64_t rows = t.n_elements / t.ne[0];
    const uint64_t in_row = gguf::row_bytes(t.type, t.ne[0]), out_row = gguf::row_bytes(target, t.ne[0]);
    const uint64_t slab_rows = std::max<uint64_t>(1, kSlabBytes / out_row);
    const quant::DequantizeFn dequantize = quant::dequantize_fn(t.type);
    for (uint64_t r0 = 0; r0 < rows; r0 += slab_rows) {
      const uint64_t nr = std::min(slab_rows, rows - r0);
      slab.resize(nr * out_row);
      std::atomic<bool> failed{false};
      pool.parallel_for(static_cast<int64_t>(nr), [&](int64_t r, int) {
        thread_local std::vector<float> row;
        row.resize(static_cast<size_t>(n));
        dequantize(t.data + (r0 + r) * in_row, row.data(), n);
        if (!quant::quantize_row(target, row.data(), slab.data() + r * out_row, n).ok()) failed = true;
      });
      if (failed)
        return make_error("{}: tensor '{}' could not be quantized to {}", src, t.name,
                          gguf::type_name(target));
      ONECARD_TRY(w.write_data(slab));
      progress.advance(slab.size());
    }
    report.bytes_out += rows * out_row;
    ++report.tensors_converted;
  }
  ONECARD_TRY(w.finish());
  progress.finish();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace onecard::model
