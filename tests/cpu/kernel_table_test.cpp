// Every kernel table this CPU can run holds what it claims: a row dot and an unpacker for every integer
// format, a float dot for F32/F16/BF16, the element-wise kernels; and each batched or packed GEMM entry it
// has equals the scalar row dot on random non-zero data, for row counts that end inside a block and odd
// block counts. The coverage (format x ISA) is printed from the tables, as `inspect --system` does.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/random_data.h"
#include "cpu/kernels.h"
#include "cpu/packed.h"
#include "cpu/random_weights.h"
#include "quant/dequantize.h"

namespace onecard::cpu {
namespace {

using gguf::GgmlType;

// Quantized activation rows of a format for nt tokens, with the per-token sums the batched kernels read.
struct Tokens {
  std::vector<float> x;
  std::vector<uint8_t> acts, sides;
  std::vector<const uint8_t*> act_ptr, side_ptr;

  Tokens(const IntFormat& f, int64_t cols, int64_t nt, uint64_t seed)
      : x(test::nonzero_gaussian(nt * cols, seed, "kernel-table")),
        acts(act_row_bytes(f.act, cols) * nt),
        sides(token_side_bytes(f, cols) * nt),
        act_ptr(nt),
        side_ptr(nt) {
    const size_t act_row = act_row_bytes(f.act, cols), side_row = token_side_bytes(f, cols);
    for (int64_t t = 0; t < nt; ++t) {
      quantize_act(f.act, x.data() + t * cols, acts.data() + t * act_row, cols);
      token_side(f, cols, acts.data() + t * act_row, sides.data() + t * side_row);
      act_ptr[t] = acts.data() + t * act_row;
      side_ptr[t] = sides.data() + t * side_row;
    }
  }
  GemmTokens view() const { return {act_ptr.data(), side_ptr.data(), static_cast<int64_t>(act_ptr.size())}; }
};

// y[t * rows + r] must equal the scalar row dot of row r with token t, to float rounding (2e-5 of sum |w x|).
void expect_scalar_dots(const IntFormat& f, const Matrix& w, const Tokens& tk, const std::vector<float>& y,
                        const std::string& what) {
  const VecDotFn dot = kernels(Isa::Scalar).row_dot[f.type];
  std::vector<float> row(static_cast<size_t>(w.cols));
  for (int64_t r = 0; r < w.rows; ++r) {
    ASSERT_TRUE(quant::dequantize_row(f.type, w.row(r), row.data(), w.cols).ok());
    for (size_t t = 0; t < tk.act_ptr.size(); ++t) {
      double magnitude = 0;
      for (int64_t c = 0; c < w.cols; ++c)
        magnitude += std::abs(static_cast<double>(row[c]) * tk.x[t * w.cols + c]);
      const float want = dot(f, w.cols, w.row(r), tk.act_ptr[t]);
      ASSERT_NEAR(y[t * w.rows + r], want, 2e-5 * magnitude + 1e-30)
          << what << " token " << t << " row " << r;
    }
  }
}

TEST(KernelTable, EveryTableHasWhatItClaims) {
  EXPECT_EQ(active_kernels().isa, active_isa());
  EXPECT_EQ(best_kernels().isa, supported_isas().back());
  for (Isa isa : supported_isas()) {
    const KernelTable& k = kernels(isa);
    EXPECT_EQ(k.isa, isa);
    EXPECT_NE(k.quantize_act, nullptr) << isa_name(isa);
    EXPECT_NE(k.silu_mul, nullptr) << isa_name(isa);
    EXPECT_NE(k.softmax, nullptr) << isa_name(isa);
    EXPECT_NE(k.exp_sum, nullptr) << isa_name(isa);
    EXPECT_NE(k.max_of, nullptr) << isa_name(isa);
    for (GgmlType type : testing::all_matmul_types()) {
      const std::string what = std::string(isa_name(isa)) + " " + std::string(gguf::type_name(type));
      const IntFormat* f = int_format(type);
      EXPECT_EQ(k.row_dot[type] != nullptr, f != nullptr) << what;
      EXPECT_EQ(k.unpack[type] != nullptr, f != nullptr) << what;
      EXPECT_EQ(k.float_dot[type] != nullptr, is_float_type(type)) << what;
      if (const GemmKernel& g = k.gemm[type]) {
        EXPECT_NE(f, nullptr) << what << ": a batched GEMM needs the integer view";
        EXPECT_GT(g.block_rows, 0) << what;
        EXPECT_GE(g.min_tokens, 1) << what;
      }
      if (k.packed[type]) {
        EXPECT_TRUE(packable(type)) << what << ": a packer needs a packed layout";
        EXPECT_TRUE(k.gemm[type]) << what << ": packed experts stand in for the batched GEMM";
      }
    }
    // The generated description names the table's ISA and each format it has a row dot for.
    const std::string line = describe(k);
    EXPECT_EQ(line.rfind(isa_name(isa), 0), 0u) << line;
    for (GgmlType type : testing::all_matmul_types()) {
      if (k.row_dot[type]) {
        EXPECT_NE(line.find(std::string(gguf::type_name(type))), std::string::npos) << line;
      }
    }
    std::printf("%s\n", line.c_str());
  }
}

TEST(KernelTable, UnpackersMatchTheScalarUnpack) {
  for (Isa isa : supported_isas()) {
    for (GgmlType type : testing::all_matmul_types()) {
      const IntFormat* f = int_format(type);
      if (f == nullptr) continue;
      const std::vector<uint8_t> w = testing::random_weights(type, 1, 5 * f->unit, 3);
      for (int u = 0; u < 5; ++u) {
        UnpackedUnit want{}, got{};
        f->unpack(w.data() + u * f->unit_bytes, want);
        kernels(isa).unpack[type](w.data() + u * f->unit_bytes, got);
        ASSERT_EQ(std::memcmp(want.q, got.q, static_cast<size_t>(f->unit)), 0)
            << isa_name(isa) << " " << gguf::type_name(type) << " unit " << u;
        for (int b = 0; b < f->subs(); ++b) {
          ASSERT_EQ(want.s[b], got.s[b]) << isa_name(isa) << " " << gguf::type_name(type) << " sub " << b;
          if (f->affine) {
            ASSERT_EQ(want.m[b], got.m[b]) << isa_name(isa) << " " << gguf::type_name(type) << " sub " << b;
          }
        }
      }
    }
  }
}

TEST(KernelTable, ActivationQuantizersGiveTheScalarBytes) {
  const int64_t n = 3 * 256;
  const std::vector<float> x = test::nonzero_gaussian(n, 8, "act-quant");
  for (Isa isa : supported_isas()) {
    for (ActFormat f : {ActFormat::Q8_0, ActFormat::Q8_K}) {
      std::vector<uint8_t> want(act_row_bytes(f, n)), got(act_row_bytes(f, n));
      kernels(Isa::Scalar).quantize_act(f, x.data(), want.data(), n);
      kernels(isa).quantize_act(f, x.data(), got.data(), n);
      EXPECT_EQ(want, got) << isa_name(isa);
    }
  }
}

TEST(KernelTable, BatchedGemmsMatchTheScalarRowDot) {
  for (Isa isa : supported_isas()) {
    const KernelTable& k = kernels(isa);
    for (GgmlType type : testing::all_matmul_types()) {
      const GemmKernel& g = k.gemm[type];
      if (!g) continue;
      const IntFormat& f = *int_format(type);
      // Rows ending 5 into a block; an odd number of weight blocks per row (several per 256-column span for
      // the 32-element formats).
      const int64_t rows = g.block_rows + 5, cols = (f.unit == 32 ? 11 : 3) * f.unit;
      const std::vector<uint8_t> data = testing::random_weights(type, rows, cols, 17);
      const Matrix w = make_matrix(type, cols, rows, data.data());
      for (int64_t nt : {g.min_tokens, g.min_tokens + 3}) {
        const Tokens tk(f, cols, nt, 30 + nt);
        std::vector<float> y(static_cast<size_t>(nt * rows));
        for (int64_t r0 = 0; r0 < rows; r0 += g.block_rows) {
          g.run(f, w, r0, std::min(g.block_rows, rows - r0), tk.view(), y.data() + r0, rows, nullptr, 0);
        }
        expect_scalar_dots(f, w, tk, y,
                           std::string(isa_name(isa)) + " gemm " + std::string(gguf::type_name(type)) +
                               " tokens " + std::to_string(nt));
      }
    }
  }
}

TEST(KernelTable, PackedGemmsMatchTheScalarRowDot) {
  for (Isa isa : supported_isas()) {
    const KernelTable& k = kernels(isa);
    for (GgmlType type : testing::all_matmul_types()) {
      const PackedKernel& pk = k.packed[type];
      if (!pk) continue;
      const IntFormat& f = *int_format(type);
      const int64_t rows = kPackedBlockRows + 5, cols = 3 * f.unit;
      const std::vector<uint8_t> data = testing::random_weights(type, rows, cols, 19);
      const Matrix w = make_matrix(type, cols, rows, data.data());
      PackedMatrix p{type, rows, cols, nullptr};
      const PackedBuffer buf = allocate_packed(p.bytes());
      ASSERT_NE(buf.data, nullptr);
      pk.pack(w, 0, 1, buf.data.get());
      p.data = buf.data.get();
      for (int64_t nt : {int64_t{1}, int64_t{7}}) {
        const Tokens tk(f, cols, nt, 60 + nt);
        std::vector<float> y(static_cast<size_t>(nt * rows));
        for (int64_t b = 0; b < p.blocks(); ++b)
          pk.gemm(p, b, tk.view(), y.data() + b * kPackedBlockRows, rows);
        expect_scalar_dots(f, w, tk, y,
                           std::string(isa_name(isa)) + " packed " + std::string(gguf::type_name(type)) +
                               " tokens " + std::to_string(nt));
      }
    }
  }
}

}  // namespace
}  // namespace onecard::cpu
