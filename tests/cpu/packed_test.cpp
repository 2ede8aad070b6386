// The packed Q2_K, Q4_K and Q6_K layouts: every block of the AVX-512 one reads back as the file's bytes,
// padding rows are zero, and every table's packed product equals the scalar row dot on the file's layout for
// each matrix of an expert tensor, blocks of two panels, of one panel with a partial last panel, and token
// counts from one to several passes and a tail.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "cpu/act_quant.h"
#include "cpu/isa.h"
#include "cpu/kernels.h"
#include "cpu/packed.h"
#include "cpu/random_weights.h"
#include "quant/dequantize.h"

namespace onecard::cpu {
namespace {

using gguf::GgmlType;

constexpr GgmlType kTypes[] = {GgmlType::Q2_K, GgmlType::Q4_K, GgmlType::Q6_K};

struct Packed {
  std::vector<uint8_t> file;
  Matrix w;
  PackedBuffer buf;
  PackedMatrix p;
};

// n matrices of rows x cols, one after another as in an expert tensor.
Packed make_packed(GgmlType type, int64_t rows, int64_t cols, int64_t n, uint64_t seed) {
  Packed out;
  out.file = testing::random_weights(type, rows * n, cols, seed);
  out.w = make_matrix(type, cols, rows, out.file.data());
  out.p = PackedMatrix{type, rows, cols, nullptr};
  out.buf = allocate_packed(out.p.bytes() * n);
  pack_matrix(out.w, 0, n, out.buf.data.get());
  out.p.data = out.buf.data.get();
  return out;
}

TEST(Packed, EveryBlockReadsBackAsTheFile) {
  for (GgmlType type : kTypes) {
    const size_t block = gguf::traits(type).type_size;
    for (int64_t rows : {64, 50, 40, 7}) {
      const int64_t cols = 768, n = 3;
      const Packed pk = make_packed(type, rows, cols, n, 5 + rows);
      // The file's bytes, plus Q6_K's 32 bytes of padding per piece.
      const size_t pieces = static_cast<size_t>((rows + 15) / 16 * 3);
      EXPECT_EQ(pk.p.bytes(), pieces * (16 * block + (type == GgmlType::Q6_K ? 32 : 0)));
      for (int64_t m = 0; m < n; ++m) {
        const PackedMatrix p = pk.p.matrix(m);
        for (int64_t r = 0; r < (rows + 15) / 16 * 16; ++r) {
          for (int64_t u = 0; u < p.units(); ++u) {
            std::vector<uint8_t> got(block), want(block, 0);
            packed_block(p, r, u, got.data());
            if (r < rows)
              std::memcpy(want.data(), pk.w.data + m * pk.w.bytes() + r * pk.w.row_bytes + u * block, block);
            ASSERT_EQ(got, want) << gguf::type_name(type) << " rows " << rows << " matrix " << m << " row "
                                 << r << " unit " << u;
          }
        }
      }
    }
  }
}

// Every table's packed product (its own layout, kernels.h), for each matrix of an expert tensor.
TEST(Packed, ProductMatchesTheScalarDot) {
  for (Isa isa : supported_isas()) {
    const KernelTable& k = kernels(isa);
    for (GgmlType type : kTypes) {
      const PackedKernel& pk = k.packed[type];
      if (!pk) continue;
      const IntFormat& f = *int_format(type);
      const VecDotFn dot = kernels(Isa::Scalar).row_dot[type];
      const int64_t cols = 768, n = 3;
      for (int64_t rows : {50, 40}) {  // last blocks of 18 rows (two panels) and of 8 (one)
        const std::vector<uint8_t> file = testing::random_weights(type, rows * n, cols, 21 + rows);
        const Matrix all = make_matrix(type, cols, rows, file.data());
        const PackedMatrix shape{type, rows, cols, nullptr};
        const PackedBuffer buf = allocate_packed(shape.bytes() * n);
        ASSERT_NE(buf.data, nullptr);
        pk.pack(all, 0, n, buf.data.get());
        std::vector<float> row(cols);
        for (int64_t m = 0; m < n; ++m) {
          const PackedMatrix p = PackedMatrix{type, rows, cols, buf.data.get()}.matrix(m);
          Matrix w = all;
          w.data += m * all.bytes();
          for (int64_t nt : {1, 2, 3, 5, 6, 7, 13, 17}) {
            const std::vector<float> x = testing::gaussian(nt * cols, 60 + nt + 100 * m);
            const size_t act_row = act_row_bytes(f.act, cols), side_row = token_side_bytes(f, cols);
            std::vector<uint8_t> acts(act_row * nt), sides(side_row * nt);
            std::vector<const uint8_t*> act_ptr(nt), side_ptr(nt);
            for (int64_t t = 0; t < nt; ++t) {
              quantize_act(f.act, x.data() + t * cols, acts.data() + t * act_row, cols);
              token_side(f, cols, acts.data() + t * act_row, sides.data() + t * side_row);
              act_ptr[t] = acts.data() + t * act_row;
              side_ptr[t] = sides.data() + t * side_row;
            }
            for (int64_t b = 0; b < p.blocks(); ++b) {
              const int64_t r0 = b * kPackedBlockRows, nr = std::min(kPackedBlockRows, rows - r0),
                            ldy = nr + 3;
              std::vector<float> y(nt * ldy, -7.0f);
              pk.gemm(p, b, GemmTokens{act_ptr.data(), side_ptr.data(), nt}, y.data(), ldy);
              for (int64_t t = 0; t < nt; ++t) {
                for (int64_t i = 0; i < ldy; ++i) {
                  const float got = y[t * ldy + i];
                  const std::string what = std::string(isa_name(isa)) + " " +
                                           std::string(gguf::type_name(type)) + " rows " +
                                           std::to_string(rows) + " matrix " + std::to_string(m) +
                                           " tokens " + std::to_string(nt) + " token " + std::to_string(t);
                  if (i >= nr) {
                    ASSERT_EQ(got, -7.0f) << what << " wrote past the rows, block " << b;
                    continue;
                  }
                  ASSERT_TRUE(quant::dequantize_row(type, w.row(r0 + i), row.data(), cols).ok());
                  double magnitude = 0;
                  for (int64_t c = 0; c < cols; ++c)
                    magnitude += std::abs(static_cast<double>(row[c]) * x[t * cols + c]);
                  ASSERT_NEAR(got, dot(f, cols, w.row(r0 + i), act_ptr[t]), 2e-5 * magnitude + 1e-30)
                      << what << " row " << r0 + i;
                }
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace onecard::cpu
