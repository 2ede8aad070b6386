#include "convert/output_type.h"

#include <cmath>

namespace onecard::convert {

bool fp8_fits_f16(const Fp8Range& r) {
  constexpr float kMaxF16 = 4096.0f;
  const float min_normal = std::ldexp(1.0f, -14);
  return r.finite && r.max_abs <= kMaxF16 && (r.min_block_max == 0.0f || r.min_block_max >= min_normal);
}

TensorType output_type(const Checkpoint& ck, const TensorMap& tm, model::WeightScheme scheme,
                       const model::MixContext& mix) {
  TensorType t;
  t.type = model::scheme_tensor_type(scheme, tm.name, tm.ne[0], static_cast<uint32_t>(tm.ne.size()), mix);
  if (t.type != gguf::GgmlType::BF16 || tm.sources.empty()) return t;
  for (const Source& s : tm.sources) {
    const StTensor* w = ck.find(s.name);
    const StTensor* scales = ck.find(s.name + "_scale_inv");
    if (w == nullptr || scales == nullptr || (w->dtype != Dtype::kF8_E4M3 && w->dtype != Dtype::kF8_E5M2))
      return t;
    if (!fp8_fits_f16(fp8_range(w->dtype, *scales))) return t;
  }
  t.type = gguf::GgmlType::F16;
  t.fp8_as_f16 = true;
  return t;
}

}  // namespace onecard::convert
