#include "model/imatrix_file.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <span>

#include "gguf/file.h"
#include "gguf/writer.h"

namespace onecard::model {

namespace {

constexpr std::string_view kSum2Suffix = ".in_sum2";
constexpr std::string_view kCountsSuffix = ".counts";

std::span<const uint8_t> float_bytes(const std::vector<float>& v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float)};
}

Status check_entry(const ImatrixEntry& e) {
  if (e.name.empty()) return make_error("an imatrix entry has no name");
  if (e.n_per_row <= 0 || e.n_mat <= 0)
    return make_error("imatrix entry '{}': n_per_row {} and n_mat {} must be positive", e.name, e.n_per_row,
                      e.n_mat);
  if (e.sum2.size() != static_cast<size_t>(e.n_per_row * e.n_mat))
    return make_error("imatrix entry '{}': {} sums for {} x {}", e.name, e.sum2.size(), e.n_per_row, e.n_mat);
  if (e.counts.size() != static_cast<size_t>(e.n_mat))
    return make_error("imatrix entry '{}': {} counts for {} matrices", e.name, e.counts.size(), e.n_mat);
  return {};
}

// The F32 values of a tensor; the data section is aligned, but a file may declare an alignment of 1.
std::vector<float> read_floats(const gguf::TensorInfo& t) {
  std::vector<float> v(t.n_elements);
  std::memcpy(v.data(), t.data, v.size() * sizeof(float));
  return v;
}

// Sums of squares and counts are never negative, and NaN or infinity would poison every mean downstream.
Status check_values(const std::string& path, std::string_view tensor, const std::vector<float>& v) {
  for (size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i]) || v[i] < 0.0f)
      return make_error("{}: tensor '{}': element {} is {} (finite, non-negative values expected)", path,
                        tensor, i, v[i]);
  }
  return {};
}

// The tensor's [ne0, ne1] with every further dimension 1: llama.cpp stores a one-matrix entry as 1-D.
Result<std::pair<int64_t, int64_t>> matrix_shape(const std::string& path, const gguf::TensorInfo& t) {
  if (t.type != gguf::GgmlType::F32)
    return make_error("{}: tensor '{}' is {} (F32 expected)", path, t.name, gguf::type_name(t.type));
  for (uint32_t d = 2; d < t.n_dims; ++d) {
    if (t.ne[d] != 1)
      return make_error("{}: tensor '{}' has shape {} (at most 2 dimensions expected)", path, t.name,
                        t.shape_string());
  }
  if (t.n_elements == 0) return make_error("{}: tensor '{}' is empty", path, t.name);
  return std::pair{static_cast<int64_t>(t.ne[0]), static_cast<int64_t>(t.ne[1])};
}

struct Pair {
  const gguf::TensorInfo* sum2 = nullptr;
  const gguf::TensorInfo* counts = nullptr;
};

Result<ImatrixEntry> read_entry(const std::string& path, const std::string& name, const Pair& p) {
  if (p.sum2 == nullptr)
    return make_error("{}: tensor '{}{}' has no partner '{}{}'", path, name, kCountsSuffix, name,
                      kSum2Suffix);
  if (p.counts == nullptr)
    return make_error("{}: tensor '{}{}' has no partner '{}{}'", path, name, kSum2Suffix, name,
                      kCountsSuffix);
  ONECARD_ASSIGN_OR_RETURN(const auto sum2_shape, matrix_shape(path, *p.sum2));
  ONECARD_ASSIGN_OR_RETURN(const auto counts_shape, matrix_shape(path, *p.counts));
  ImatrixEntry e;
  e.name = name;
  e.n_per_row = sum2_shape.first;
  e.n_mat = sum2_shape.second;
  // One count per matrix, or a single count shared by all of them (as llama.cpp also reads it).
  const bool shared = p.counts->n_elements == 1;
  if (counts_shape.first != 1 || (!shared && counts_shape.second != e.n_mat)) {
    return make_error("{}: tensor '{}' has shape {}, but '{}' {} needs [1, {}]", path, p.counts->name,
                      p.counts->shape_string(), p.sum2->name, p.sum2->shape_string(), e.n_mat);
  }
  e.sum2 = read_floats(*p.sum2);
  ONECARD_TRY(check_values(path, p.sum2->name, e.sum2));
  e.counts = read_floats(*p.counts);
  ONECARD_TRY(check_values(path, p.counts->name, e.counts));
  if (shared) e.counts.assign(static_cast<size_t>(e.n_mat), e.counts[0]);
  return e;
}

Result<Imatrix> parse(const gguf::File& f) {
  const std::string& path = f.path();
  const gguf::Value* type = f.find("general.type");
  if (type == nullptr) return make_error("{}: not an imatrix file (no 'general.type' key)", path);
  ONECARD_ASSIGN_OR_RETURN(const std::string type_name, f.get<std::string>("general.type"));
  if (type_name != "imatrix")
    return make_error("{}: not an imatrix file ('general.type' is '{}', 'imatrix' expected)", path,
                      type_name);

  Imatrix m;
  const gguf::Value* datasets = f.find("imatrix.datasets");
  if (datasets == nullptr) return make_error("{}: missing metadata key 'imatrix.datasets'", path);
  if (!datasets->is_array() || datasets->array_type() != gguf::ValueType::STRING)
    return make_error("{}: key 'imatrix.datasets' is {} (array of string expected)", path,
                      datasets->type_description());
  for (std::string_view d : datasets->strings()) m.datasets.emplace_back(d);
  ONECARD_ASSIGN_OR_RETURN(m.chunk_count, f.get<uint32_t>("imatrix.chunk_count"));
  ONECARD_ASSIGN_OR_RETURN(m.chunk_size, f.get<uint32_t>("imatrix.chunk_size"));

  std::map<std::string, Pair> pairs;  // sorted by weight name, whatever the file's order
  for (const gguf::TensorInfo& t : f.tensors()) {
    std::string_view n = t.name;
    if (n.ends_with(kSum2Suffix)) {
      pairs[std::string(n.substr(0, n.size() - kSum2Suffix.size()))].sum2 = &t;
    } else if (n.ends_with(kCountsSuffix)) {
      pairs[std::string(n.substr(0, n.size() - kCountsSuffix.size()))].counts = &t;
    }
    // Anything else (llama.cpp's optional "<name>.in_sum", plain means) is not needed for quantization.
  }
  if (pairs.empty()) return make_error("{}: no '<name>.in_sum2' / '<name>.counts' tensors", path);
  for (const auto& [name, p] : pairs) {
    ONECARD_ASSIGN_OR_RETURN(ImatrixEntry e, read_entry(path, name, p));
    m.entries.push_back(std::move(e));
  }
  return m;
}

}  // namespace

const ImatrixEntry* Imatrix::find(std::string_view name) const {
  for (const ImatrixEntry& e : entries) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

std::vector<float> mean_squares(const ImatrixEntry& e, int64_t mat) {
  if (mat < 0 || mat >= e.n_mat || static_cast<size_t>(mat) >= e.counts.size()) return {};
  const float count = e.counts[static_cast<size_t>(mat)];
  if (!(count > 0.0f)) return {};
  const auto begin = e.sum2.begin() + mat * e.n_per_row;
  std::vector<float> out(begin, begin + e.n_per_row);
  for (float& v : out) v /= count;
  return out;
}

Status write_imatrix(const std::string& path, const Imatrix& m) {
  std::vector<const ImatrixEntry*> sorted;
  for (const ImatrixEntry& e : m.entries) {
    auto s = check_entry(e);
    if (!s.ok()) return s.error().with_context(path);
    sorted.push_back(&e);
  }
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->name < b->name; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i]->name == sorted[i - 1]->name)
      return make_error("{}: imatrix entry '{}' appears twice", path, sorted[i]->name);
  }

  gguf::Writer w;
  w.set("general.type", gguf::MetaValue::string("imatrix"));
  w.set("imatrix.datasets", gguf::MetaValue::strings(m.datasets));
  w.set("imatrix.chunk_count", gguf::MetaValue::u32(m.chunk_count));
  w.set("imatrix.chunk_size", gguf::MetaValue::u32(m.chunk_size));
  for (const ImatrixEntry* e : sorted) {
    const auto n_per_row = static_cast<uint64_t>(e->n_per_row);
    const auto n_mat = static_cast<uint64_t>(e->n_mat);
    ONECARD_TRY(w.add_tensor(e->name + std::string(kSum2Suffix), {n_per_row, n_mat}, gguf::GgmlType::F32));
    ONECARD_TRY(w.add_tensor(e->name + std::string(kCountsSuffix), {1, n_mat}, gguf::GgmlType::F32));
  }

  // Written beside the destination and renamed over it at the end, so a failed or interrupted write never
  // leaves a truncated file under the final name.
  const std::string part = path + ".part";
  Status written = [&]() -> Status {
    ONECARD_TRY(w.open(part));
    for (const ImatrixEntry* e : sorted) {
      ONECARD_TRY(w.write_data(float_bytes(e->sum2)));
      ONECARD_TRY(w.write_data(float_bytes(e->counts)));
    }
    return w.finish();
  }();
  if (!written.ok()) {
    std::remove(part.c_str());
    return written;
  }
  if (std::rename(part.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(part.c_str());
    return make_error("{}: cannot rename {} to it: {}", path, part, std::strerror(err));
  }
  return {};
}

Result<Imatrix> read_imatrix(const std::string& path) {
  ONECARD_ASSIGN_OR_RETURN(const gguf::File f, gguf::File::open(path));
  return parse(f);
}

}  // namespace onecard::model
