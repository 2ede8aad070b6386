// Every table's latent-attention products equal the scalar reference on random queries and cache rows, for
// f32 and bf16 rows, head counts around the kernels' blocks (1, 3, 5, 8, 12, 16, 29) and row counts with
// tails (1-7, 11, 16), a width that is not a multiple of the vector length, and a sum over fewer columns than
// the row has.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "base/half.h"
#include "base/rng.h"
#include "cpu/kernels.h"

namespace onecard::cpu {
namespace {

struct Case {
  int g;
  int64_t m, width, n;
};

TEST(LatentAttention, EveryTableMatchesTheScalarProducts) {
  Rng rng(9, "latent-attention");
  for (bool bf16 : {false, true}) {
    const LatentKernels ref =
        kernels(Isa::Scalar).*(bf16 ? &KernelTable::latent_bf16 : &KernelTable::latent_f32);
    for (Isa isa : supported_isas()) {
      const LatentKernels lk = kernels(isa).*(bf16 ? &KernelTable::latent_bf16 : &KernelTable::latent_f32);
      for (const Case c :
           {Case{16, 16, 576, 512}, Case{5, 7, 576, 512}, Case{3, 1, 90, 83}, Case{8, 5, 53, 53},
            Case{1, 3, 576, 512}, Case{12, 11, 576, 512}, Case{29, 2, 70, 70}}) {
        std::vector<float> q(static_cast<size_t>(c.g * c.width)), rows_f(static_cast<size_t>(c.m * c.width));
        for (float& v : q) v = rng.normal();
        for (float& v : rows_f) v = bf16_to_fp32(fp32_to_bf16(rng.normal()));
        std::vector<uint16_t> rows_b(rows_f.size());
        for (size_t i = 0; i < rows_f.size(); ++i) rows_b[i] = fp32_to_bf16(rows_f[i]);
        const void* rows = bf16 ? static_cast<const void*>(rows_b.data()) : rows_f.data();
        const std::string what = std::string(isa_name(isa)) + (bf16 ? " bf16" : " f32") + " g " +
                                 std::to_string(c.g) + " m " + std::to_string(c.m) + " width " +
                                 std::to_string(c.width);

        const int64_t lds = c.m + 3;
        std::vector<float> want(static_cast<size_t>(c.g * lds), -1), got(want);
        ref.scores(q.data(), c.g, c.width, rows, c.m, c.width, 0.5f, want.data(), lds);
        lk.scores(q.data(), c.g, c.width, rows, c.m, c.width, 0.5f, got.data(), lds);
        for (int j = 0; j < c.g; ++j) {
          for (int64_t p = 0; p < lds; ++p) {
            // Float rounding of the sum of |q r| (past the rows: untouched, exactly).
            double magnitude = 0;
            for (int64_t x = 0; p < c.m && x < c.width; ++x)
              magnitude += std::abs(q[j * c.width + x] * rows_f[p * c.width + x]);
            const auto bound = static_cast<float>(2e-6 * 0.5 * magnitude);
            ASSERT_NEAR(got[j * lds + p], want[j * lds + p], bound) << what << " score " << j << "," << p;
          }
        }

        std::vector<float> w(static_cast<size_t>(c.g * c.m));
        for (float& v : w) v = rng.uniform();
        const int64_t ldo = c.n + 2;
        std::vector<float> o_want(static_cast<size_t>(c.g * ldo));
        for (float& v : o_want) v = rng.normal();
        std::vector<float> o_got(o_want);
        ref.sum(w.data(), c.m, c.g, rows, c.m, c.width, c.n, o_want.data(), ldo);
        lk.sum(w.data(), c.m, c.g, rows, c.m, c.width, c.n, o_got.data(), ldo);
        for (int j = 0; j < c.g; ++j) {
          for (int64_t x = 0; x < ldo; ++x) {
            double magnitude = std::abs(o_want[j * ldo + x]);
            for (int64_t p = 0; x < c.n && p < c.m; ++p)
              magnitude += std::abs(w[j * c.m + p] * rows_f[p * c.width + x]);
            ASSERT_NEAR(o_got[j * ldo + x], o_want[j * ldo + x], 2e-6 * magnitude)
                << what << " sum " << j << "," << x;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace onecard::cpu
