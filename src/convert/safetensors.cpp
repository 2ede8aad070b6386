#include "convert/safetensors.h"

#include <algorithm>
#include <array>
#include <cstring>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

namespace onecard::convert {
namespace {

using json = nlohmann::json;

// A header bigger than this is not a real checkpoint's (the 671B model's largest shard header is ~100 KB);
// the cap keeps a corrupt length from making the JSON parser allocate the whole file.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
// More dimensions than any weight has; bounds the work a hostile header can ask for.
constexpr size_t kMaxDims = 8;

struct DtypeInfo {
  Dtype dtype;
  std::string_view name;
  uint32_t size;
};
constexpr std::array<DtypeInfo, 12> kDtypes{{
    {Dtype::kF64, "F64", 8},
    {Dtype::kF32, "F32", 4},
    {Dtype::kF16, "F16", 2},
    {Dtype::kBF16, "BF16", 2},
    {Dtype::kF8_E4M3, "F8_E4M3", 1},
    {Dtype::kF8_E5M2, "F8_E5M2", 1},
    {Dtype::kI64, "I64", 8},
    {Dtype::kI32, "I32", 4},
    {Dtype::kI16, "I16", 2},
    {Dtype::kI8, "I8", 1},
    {Dtype::kU8, "U8", 1},
    {Dtype::kBool, "BOOL", 1},
}};

const DtypeInfo& info(Dtype d) {
  return kDtypes[static_cast<size_t>(d)];
}

// Parses one tensor entry; `at` prefixes every message ("FILE: tensor 'NAME'").
Result<StTensor> parse_entry(const std::string& at, const std::string& name, const json& e,
                             uint64_t data_size) {
  if (!e.is_object()) return make_error("{}: the header entry is not an object", at);
  StTensor t;
  t.name = name;
  const auto dt = e.find("dtype");
  if (dt == e.end() || !dt->is_string())
    return make_error("{}: field 'dtype' is missing or not a string", at);
  const std::string& dname = dt->get_ref<const std::string&>();
  const auto known =
      std::find_if(kDtypes.begin(), kDtypes.end(), [&](const DtypeInfo& i) { return i.name == dname; });
  if (known == kDtypes.end()) return make_error("{}: field 'dtype': unknown dtype '{}'", at, dname);
  t.dtype = known->dtype;

  const auto shape = e.find("shape");
  if (shape == e.end() || !shape->is_array())
    return make_error("{}: field 'shape' is missing or not an array", at);
  if (shape->size() > kMaxDims) return make_error("{}: field 'shape' has {} dimensions", at, shape->size());
  for (const json& d : *shape) {
    if (!d.is_number_unsigned()) return make_error("{}: field 'shape' holds {}, not a size", at, d.dump());
    t.shape.push_back(d.get<uint64_t>());
  }
  const auto offsets = e.find("data_offsets");
  if (offsets == e.end() || !offsets->is_array() || offsets->size() != 2 ||
      !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned())
    return make_error("{}: field 'data_offsets' must be two byte offsets [begin, end]", at);
  t.begin = (*offsets)[0].get<uint64_t>();
  t.end = (*offsets)[1].get<uint64_t>();
  if (t.begin > t.end)
    return make_error("{}: field 'data_offsets': begin {} is after end {}", at, t.begin, t.end);
  if (t.end > data_size)
    return make_error(
        "{}: field 'data_offsets': bytes [{}, {}) run past the {} bytes of data (truncated file?)", at,
        t.begin, t.end, data_size);

  // shape × dtype size must be exactly the byte range; the product is checked for overflow.
  uint64_t bytes = info(t.dtype).size;
  for (uint64_t d : t.shape) {
    if (d != 0 && bytes > UINT64_MAX / d)
      return make_error("{}: field 'shape' {} overflows", at, t.shape_string());
    bytes *= d;
  }
  if (bytes != t.end - t.begin)
    return make_error("{}: shape {} of {} needs {} bytes but 'data_offsets' [{}, {}) hold {}", at,
                      t.shape_string(), dname, bytes, t.begin, t.end, t.end - t.begin);
  return t;
}

}  // namespace

std::string_view dtype_name(Dtype d) {
  return info(d).name;
}
uint32_t dtype_size(Dtype d) {
  return info(d).size;
}

uint64_t StTensor::n_elements() const {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;
  return n;
}

std::string StTensor::shape_string() const {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

const StTensor* SafetensorsFile::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Result<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  ONECARD_ASSIGN_OR_RETURN(MappedFile map, MappedFile::open(path));
  auto owned = std::make_unique<MappedFile>(std::move(map));
  ONECARD_ASSIGN_OR_RETURN(SafetensorsFile f, parse(owned->bytes(), path));
  f.map_ = std::move(owned);
  return f;
}

Result<SafetensorsFile> SafetensorsFile::parse(std::span<const uint8_t> bytes, std::string name) {
  SafetensorsFile f;
  f.name_ = std::move(name);
  const std::string& at = f.name_;
  if (bytes.size() < 8)
    return make_error("{}: {} bytes is too short for a safetensors header length", at, bytes.size());
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[static_cast<size_t>(i)];
  if (header_len > kMaxHeaderBytes || header_len > bytes.size() - 8)
    return make_error("{}: header length {} does not fit in the file of {} bytes", at, header_len,
                      bytes.size());
  const auto* hb = reinterpret_cast<const char*>(bytes.data() + 8);
  const json header = json::parse(hb, hb + header_len, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) return make_error("{}: the header is not valid JSON", at);
  if (!header.is_object()) return make_error("{}: the header is not a JSON object", at);

  const uint8_t* data = bytes.data() + 8 + header_len;
  const uint64_t data_size = bytes.size() - 8 - header_len;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) return make_error("{}: '__metadata__' is not an object", at);
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) return make_error("{}: '__metadata__' field '{}' is not a string", at, mk);
        f.metadata_[mk] = mv.get<std::string>();
      }
      continue;
    }
    ONECARD_ASSIGN_OR_RETURN(StTensor t,
                             parse_entry(fmt::format("{}: tensor '{}'", at, key), key, value, data_size));
    t.data = data + t.begin;
    f.tensors_.push_back(std::move(t));
  }

  // No two tensors may share bytes: a writer bug or a crafted file could otherwise alias weights.
  std::vector<const StTensor*> by_offset;
  for (const StTensor& t : f.tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](const StTensor* a, const StTensor* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  const StTensor* last = nullptr;  // the non-empty tensor reaching furthest so far
  for (const StTensor* t : by_offset) {
    if (t->begin == t->end) continue;
    if (last != nullptr && t->begin < last->end)
      return make_error("{}: tensor '{}': field 'data_offsets' [{}, {}) overlaps tensor '{}' [{}, {})", at,
                        t->name, t->begin, t->end, last->name, last->begin, last->end);
    if (last == nullptr || t->end > last->end) last = t;
  }
  for (size_t i = 0; i < f.tensors_.size(); ++i) f.index_.emplace(f.tensors_[i].name, i);
  return f;
}

}  // namespace onecard::convert
