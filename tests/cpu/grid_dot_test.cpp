// The grid formats' row dots (IQ1_S .. IQ3_S) at the edges of their integer sums, on every ISA's table,
// against the scalar reference: activations at +-127 with the signs of the weights (the largest int16 pair
// sums and int32 block sums the SIMD dots form), against them, and random, on an odd number of blocks; and
// their unpackers on many random blocks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "base/rng.h"
#include "cpu/int_format.h"
#include "cpu/kernels.h"
#include "cpu/random_weights.h"
#include "quant/blocks.h"

namespace onecard::cpu {
namespace {

using gguf::GgmlType;

constexpr GgmlType kGridTypes[] = {GgmlType::IQ1_S, GgmlType::IQ1_M,   GgmlType::IQ2_XXS, GgmlType::IQ2_XS,
                                   GgmlType::IQ2_S, GgmlType::IQ3_XXS, GgmlType::IQ3_S};

enum class Activations { WithTheWeights, AgainstTheWeights, Random };

// Q8_K activations for the row w, and the sum of |w * a| in the integer view (the scale of float rounding).
std::vector<quant::BlockQ8_K> activations(const IntFormat& f, const uint8_t* w, int64_t units,
                                          Activations kind, double* mag) {
  std::vector<quant::BlockQ8_K> a(static_cast<size_t>(units));
  Rng rng(units, "grid-dot-test");
  *mag = 0;
  for (int64_t i = 0; i < units; ++i) {
    UnpackedUnit u;
    f.unpack(w + i * f.unit_bytes, u);
    quant::BlockQ8_K& b = a[static_cast<size_t>(i)];
    b.d = 0.01f + 0.001f * static_cast<float>(i);
    for (int j = 0; j < f.unit; ++j) {
      const int level = u.q[j] - f.zero;
      int v = level >= 0 ? 127 : -127;
      if (kind == Activations::AgainstTheWeights) v = -v;
      if (kind == Activations::Random) v = static_cast<int>(rng.next() % 255) - 127;
      b.qs[j] = static_cast<int8_t>(v);
      *mag += std::abs(static_cast<double>(u.s[j / f.sub]) * level * v * b.d);
    }
    for (int k = 0; k < quant::kQK_K / 16; ++k) {
      int sum = 0;
      for (int j = 16 * k; j < 16 * k + 16; ++j) sum += b.qs[j];
      b.bsums[k] = static_cast<int16_t>(sum);
    }
  }
  return a;
}

TEST(GridDot, ExtremeAndRandomActivationsMatchTheScalarReference) {
  // One block too: the AVX-512 dots decode a block's signs while the one before it is multiplied.
  for (int64_t units : {int64_t{1}, int64_t{7}}) {
    for (GgmlType type : kGridTypes) {
      const IntFormat& f = *int_format(type);
      const int64_t n = units * f.unit;
      const std::vector<uint8_t> w = testing::random_weights(type, 1, n, 21);
      for (Activations kind :
           {Activations::WithTheWeights, Activations::AgainstTheWeights, Activations::Random}) {
        double mag = 0;
        const std::vector<quant::BlockQ8_K> a = activations(f, w.data(), units, kind, &mag);
        const float want = vec_dot_scalar(f, n, w.data(), a.data());
        for (Isa isa : supported_isas()) {
          const float got = kernels(isa).row_dot[type](f, n, w.data(), a.data());
          EXPECT_NEAR(got, want, 1e-5 * mag) << isa_name(isa) << " " << gguf::type_name(type) << " units "
                                             << units << " activations " << static_cast<int>(kind);
        }
      }
    }
  }
}

TEST(GridDot, UnpackersMatchTheScalarUnpackOnManyBlocks) {
  const int64_t units = 97;
  for (GgmlType type : kGridTypes) {
    const IntFormat& f = *int_format(type);
    const std::vector<uint8_t> w = testing::random_weights(type, 1, units * f.unit, 5);
    for (Isa isa : supported_isas()) {
      for (int64_t i = 0; i < units; ++i) {
        UnpackedUnit want{}, got{};
        f.unpack(w.data() + i * f.unit_bytes, want);
        kernels(isa).unpack[type](w.data() + i * f.unit_bytes, got);
        ASSERT_EQ(std::memcmp(want.q, got.q, sizeof(want.q)), 0)
            << isa_name(isa) << " " << gguf::type_name(type) << " block " << i;
        ASSERT_EQ(std::memcmp(want.s, got.s, sizeof(float) * static_cast<size_t>(f.subs())), 0)
            << isa_name(isa) << " " << gguf::type_name(type) << " block " << i;
      }
    }
  }
}

}  // namespace
}  // namespace onecard::cpu
