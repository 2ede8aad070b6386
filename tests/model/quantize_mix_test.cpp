// The mixes of `onecard quantize`: the type each tensor of a DeepSeek-V3-shaped model gets in each mix (the
// facts of llama.cpp's llama-quantize for deepseek2), file types, row fallbacks, --override rules and their
// errors, and the importance matrix reaching the quantizer (per matrix, per expert) on small synthetic files.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/random_data.h"
#include "common/test_paths.h"
#include "gguf/file.h"
#include "gguf/writer.h"
#include "model/quantize_file.h"
#include "model/weight_scheme.h"
#include "quant/dequantize.h"

namespace onecard::model {
namespace {

using gguf::GgmlType;
using T = GgmlType;

struct Tensor {
  const char* name;
  uint64_t ne0;
  uint32_t n_dims;
};

// V3's shapes (61 layers, combined MLA plus the split tensors); the layers chosen fall on both sides of each
// layer rule: 0 and 3 in the first eighth (0-6) and 0 in the first sixteenth (0-2), 9 a use-more-bits layer
// ((9 - 7) % 3 == 2), 10 not, 54 in the last eighth (53-60).
constexpr Tensor kV3[] = {
    {"token_embd.weight", 7168, 2},
    {"output.weight", 7168, 2},
    {"output_norm.weight", 7168, 1},
    {"blk.0.attn_kv_b.weight", 512, 2},
    {"blk.0.ffn_down.weight", 18432, 2},
    {"blk.0.attn_output.weight", 16384, 2},
    {"blk.0.attn_q_b.weight", 1536, 2},
    {"blk.3.ffn_down_exps.weight", 2048, 3},
    {"blk.3.ffn_gate_exps.weight", 7168, 3},
    {"blk.3.ffn_gate_inp.weight", 7168, 2},
    {"blk.9.ffn_down_exps.weight", 2048, 3},
    {"blk.9.attn_kv_b.weight", 512, 2},
    {"blk.10.ffn_down_shexp.weight", 2048, 2},
    {"blk.10.attn_kv_b.weight", 512, 2},
    {"blk.54.ffn_down_exps.weight", 2048, 3},
    {"blk.3.attn_k_b.weight", 128, 3},
    {"blk.3.attn_v_b.weight", 512, 3},
    {"blk.3.exp_probs_b.bias", 256, 1},
};
constexpr size_t kN = std::size(kV3);

struct MixRow {
  WeightScheme scheme;
  uint32_t file_type;
  std::array<GgmlType, kN> types;  // in kV3's order
};

// clang-format off
const MixRow kMixes[] = {
    // embd    output  o_norm  0.kv_b  0.down  0.out   0.q_b   3.down  3.gate  3.inp   9.down  9.kv_b  10.shx  10.kvb  54.down 3.k_b   3.v_b   bias
    {WeightScheme::kQ8_0, 7, {T::Q8_0, T::Q8_0, T::F32, T::Q8_0, T::Q8_0, T::Q8_0, T::Q8_0, T::Q8_0, T::Q8_0, T::F32, T::Q8_0, T::Q8_0, T::Q8_0, T::Q8_0, T::Q8_0, T::Q8_0, T::Q8_0, T::F32}},
    {WeightScheme::kQ6_K, 18, {T::Q6_K, T::Q6_K, T::F32, T::Q6_K, T::Q6_K, T::Q6_K, T::Q6_K, T::Q6_K, T::Q6_K, T::F32, T::Q6_K, T::Q6_K, T::Q6_K, T::Q6_K, T::Q6_K, T::Q8_0, T::Q6_K, T::F32}},
    {WeightScheme::kQ5_K_M, 17, {T::Q5_K, T::Q6_K, T::F32, T::Q6_K, T::Q6_K, T::Q5_K, T::Q5_K, T::Q6_K, T::Q5_K, T::F32, T::Q6_K, T::Q6_K, T::Q5_K, T::Q5_K, T::Q6_K, T::Q8_0, T::Q6_K, T::F32}},
    {WeightScheme::kQ5_K_S, 16, {T::Q5_K, T::Q6_K, T::F32, T::Q5_K, T::Q5_K, T::Q5_K, T::Q5_K, T::Q5_K, T::Q5_K, T::F32, T::Q5_K, T::Q5_K, T::Q5_K, T::Q5_K, T::Q5_K, T::Q8_0, T::Q5_K, T::F32}},
    {WeightScheme::kQ4_K_M, 15, {T::Q4_K, T::Q6_K, T::F32, T::Q6_K, T::Q6_K, T::Q4_K, T::Q4_K, T::Q6_K, T::Q4_K, T::F32, T::Q6_K, T::Q6_K, T::Q4_K, T::Q4_K, T::Q6_K, T::Q8_0, T::Q6_K, T::F32}},
    {WeightScheme::kQ4_K_S, 14, {T::Q4_K, T::Q6_K, T::F32, T::Q5_K, T::Q5_K, T::Q4_K, T::Q4_K, T::Q5_K, T::Q4_K, T::F32, T::Q4_K, T::Q4_K, T::Q4_K, T::Q4_K, T::Q4_K, T::Q8_0, T::Q5_K, T::F32}},
    {WeightScheme::kIQ4_XS, 30, {T::IQ4_XS, T::Q6_K, T::F32, T::IQ4_XS, T::Q5_K, T::IQ4_XS, T::IQ4_XS, T::Q5_K, T::IQ4_XS, T::F32, T::IQ4_XS, T::IQ4_XS, T::IQ4_XS, T::IQ4_XS, T::IQ4_XS, T::IQ4_NL, T::IQ4_XS, T::F32}},
    {WeightScheme::kQ3_K_L, 13, {T::Q3_K, T::Q6_K, T::F32, T::Q5_K, T::Q5_K, T::Q5_K, T::Q3_K, T::Q5_K, T::Q3_K, T::F32, T::Q5_K, T::Q5_K, T::Q5_K, T::Q5_K, T::Q5_K, T::Q4_0, T::Q5_K, T::F32}},
    {WeightScheme::kQ3_K_M, 12, {T::Q3_K, T::Q6_K, T::F32, T::Q5_K, T::Q5_K, T::Q4_K, T::Q3_K, T::Q4_K, T::Q3_K, T::F32, T::Q4_K, T::Q4_K, T::Q4_K, T::Q4_K, T::Q4_K, T::Q4_0, T::Q4_K, T::F32}},
    {WeightScheme::kQ3_K_S, 11, {T::Q3_K, T::Q6_K, T::F32, T::Q3_K, T::Q3_K, T::Q3_K, T::Q3_K, T::Q3_K, T::Q3_K, T::F32, T::Q3_K, T::Q3_K, T::Q3_K, T::Q3_K, T::Q3_K, T::Q4_0, T::Q3_K, T::F32}},
    {WeightScheme::kQ2_K, 10, {T::Q2_K, T::Q6_K, T::F32, T::Q3_K, T::Q3_K, T::Q3_K, T::Q2_K, T::Q3_K, T::Q2_K, T::F32, T::Q3_K, T::Q3_K, T::Q3_K, T::Q3_K, T::Q3_K, T::Q4_0, T::Q3_K, T::F32}},
    {WeightScheme::kQ4_0, 2, {T::Q4_0, T::Q6_K, T::F32, T::Q4_0, T::Q4_0, T::Q4_0, T::Q4_0, T::Q4_0, T::Q4_0, T::F32, T::Q4_0, T::Q4_0, T::Q4_0, T::Q4_0, T::Q4_0, T::Q4_0, T::Q4_0, T::F32}},
    {WeightScheme::kQ4_K, 14, {T::Q4_K, T::Q4_K, T::F32, T::Q4_K, T::Q4_K, T::Q4_K, T::Q4_K, T::Q4_K, T::Q4_K, T::F32, T::Q4_K, T::Q4_K, T::Q4_K, T::Q4_K, T::Q4_K, T::Q8_0, T::Q4_K, T::F32}},
    {WeightScheme::kBF16, 32, {T::BF16, T::BF16, T::F32, T::BF16, T::BF16, T::BF16, T::BF16, T::BF16, T::BF16, T::F32, T::BF16, T::BF16, T::BF16, T::BF16, T::BF16, T::BF16, T::BF16, T::F32}},
};
// clang-format on

constexpr MixContext kV3Combined{61, 1, false};

TEST(QuantizeMix, EachTensorOfV3GetsTheTypeOfItsMix) {
  for (const MixRow& row : kMixes) {
    SCOPED_TRACE(std::string(scheme_name(row.scheme)));
    EXPECT_EQ(scheme_file_type(row.scheme), row.file_type);
    for (size_t i = 0; i < kN; ++i) {
      EXPECT_EQ(scheme_tensor_type(row.scheme, kV3[i].name, kV3[i].ne0, kV3[i].n_dims, kV3Combined),
                row.types[i])
          << kV3[i].name << ": " << gguf::type_name(row.types[i]) << " expected";
    }
  }
}

TEST(QuantizeMix, Q4KMUsesMoreBitsInTheFirstAndLastEighthAndEveryThirdLayer) {
  std::vector<int> q6;
  for (int layer = 0; layer < 61; ++layer) {
    const std::string name = "blk." + std::to_string(layer) + ".ffn_down_exps.weight";
    if (mix_tensor_type(WeightScheme::kQ4_K_M, name, 3, kV3Combined) == T::Q6_K) q6.push_back(layer);
    EXPECT_EQ(mix_tensor_type(WeightScheme::kQ4_K_M, "blk." + std::to_string(layer) + ".attn_kv_b.weight", 2,
                              kV3Combined),
              mix_tensor_type(WeightScheme::kQ4_K_M, name, 3, kV3Combined));
  }
  std::vector<int> want = {0, 1, 2, 3, 4, 5, 6};
  for (int l = 9; l < 53; l += 3) want.push_back(l);
  for (int l = 53; l < 61; ++l) want.push_back(l);
  EXPECT_EQ(q6, want);
}

TEST(QuantizeMix, SplitMlaImatrixAndUnknownLayerCount) {
  const MixContext split{61, 128, false};  // head_count_kv 1: every head shares the latent
  EXPECT_EQ(mix_tensor_type(WeightScheme::kQ2_K, "blk.10.attn_v_b.weight", 3, split), T::Q4_K);
  EXPECT_EQ(mix_tensor_type(WeightScheme::kIQ4_XS, "blk.10.attn_v_b.weight", 3, split), T::Q5_K);
  EXPECT_EQ(mix_tensor_type(WeightScheme::kIQ4_XS, "blk.10.attn_kv_b.weight", 2, split), T::Q5_K);
  // With an imatrix IQ4_XS keeps the first ffn_down layers at IQ4_XS.
  const MixContext with_imatrix{61, 1, true};
  EXPECT_EQ(mix_tensor_type(WeightScheme::kIQ4_XS, "blk.0.ffn_down.weight", 2, with_imatrix), T::IQ4_XS);
  EXPECT_EQ(mix_tensor_type(WeightScheme::kIQ4_XS, "blk.0.ffn_down.weight", 2, kV3Combined), T::Q5_K);
  // An unknown layer count takes every layer-dependent upgrade.
  EXPECT_EQ(mix_tensor_type(WeightScheme::kQ4_K_M, "blk.10.ffn_down_exps.weight", 3), T::Q6_K);
  EXPECT_EQ(mix_tensor_type(WeightScheme::kQ4_K_S, "blk.30.ffn_down_exps.weight", 3), T::Q5_K);
  EXPECT_EQ(mix_tensor_type(WeightScheme::kQ4_K_M, "blk.10.ffn_up_exps.weight", 3), T::Q4_K);
}

TEST(QuantizeMix, RowFallbacks) {
  EXPECT_EQ(fit_row(T::IQ4_XS, 128), T::IQ4_NL);
  EXPECT_EQ(fit_row(T::Q2_K, 128), T::Q4_0);
  EXPECT_EQ(fit_row(T::Q3_K, 96), T::Q4_0);
  EXPECT_EQ(fit_row(T::Q4_K, 128), T::Q8_0);
  EXPECT_EQ(fit_row(T::Q5_K, 64), T::Q8_0);
  EXPECT_EQ(fit_row(T::IQ4_XS, 200), T::F16);
  EXPECT_EQ(fit_row(T::Q2_K, 40), T::F16);
  EXPECT_EQ(fit_row(T::Q4_K, 7168), T::Q4_K);
}

TEST(QuantizeMix, SchemeNamesRoundTripAndAreUnique) {
  std::vector<std::string> seen;
  for (WeightScheme s : all_schemes()) {
    auto parsed = parse_scheme(std::string(scheme_name(s)));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(parsed.value(), s);
    EXPECT_FALSE(scheme_description(s).empty());
    EXPECT_EQ(std::count(seen.begin(), seen.end(), std::string(scheme_name(s))), 0);
    seen.emplace_back(scheme_name(s));
  }
  EXPECT_EQ(parse_scheme("Q4_K_M").value(), WeightScheme::kQ4_K_M);
  EXPECT_EQ(parse_scheme("IQ4_XS").value(), WeightScheme::kIQ4_XS);
}

// --- overrides

TEST(QuantizeOverride, ParsesAndTheFirstFullMatchWins) {
  std::vector<TypeOverride> rules;
  for (const char* r : {"blk\\.0\\..*=q8_0", ".*attn_.*=Q6_K", "token_embd.weight=bf16", "ffn_up=f16"}) {
    auto o = parse_override(r);
    ASSERT_TRUE(o.ok()) << o.error().message();
    rules.push_back(std::move(o.value()));
  }
  EXPECT_EQ(rules[0].type, T::Q8_0);
  EXPECT_EQ(rules[1].type, T::Q6_K);
  EXPECT_EQ(find_override(rules, "blk.0.attn_q_b.weight"), 0u);  // both match: the first wins
  EXPECT_EQ(find_override(rules, "blk.1.attn_q_b.weight"), 1u);
  EXPECT_EQ(find_override(rules, "token_embd.weight"), 2u);
  // Whole names only: "ffn_up" is part of the name, not all of it.
  EXPECT_EQ(find_override(rules, "blk.1.ffn_up_exps.weight"), std::nullopt);
  // A regex may hold '=' itself; the type is after the last one.
  auto eq = parse_override("(?=blk).*=q4_k");
  ASSERT_TRUE(eq.ok()) << eq.error().message();
  EXPECT_EQ(eq->type, T::Q4_K);
  EXPECT_EQ(parse_override("x=iq4_xs")->type, T::IQ4_XS);
}

TEST(QuantizeOverride, ErrorsNameTheRuleAndTheProblem) {
  auto expect_error = [](const char* rule, const char* part) {
    auto o = parse_override(rule);
    ASSERT_FALSE(o.ok()) << rule;
    EXPECT_NE(o.error().message().find(part), std::string::npos) << o.error().message();
    EXPECT_NE(o.error().message().find(rule), std::string::npos) << o.error().message();
  };
  expect_error("blk.0", "expected REGEX=TYPE");
  expect_error("=q8_0", "regex before '=' is empty");
  expect_error("blk\\.(0=q8_0", "bad regex");
  expect_error("blk=q9_k", "unknown type 'q9_k'");
  expect_error("blk=iq2_xxs", "no quantizer for IQ2_XXS");
  expect_error("blk=q8_k", "no quantizer for Q8_K");  // an activation format
}

// --- files

std::vector<float> gaussian(uint64_t n, uint64_t seed) {
  return test::nonzero_gaussian(static_cast<int64_t>(n), seed, "quantize-mix");
}

struct SynthTensor {
  std::string name;
  std::vector<uint64_t> ne;
};

// A small F32 GGUF: a 2-D matrix, a stacked expert tensor of 4 experts, a vector; 3 layers of deepseek2.
std::string write_synth(const std::string& file) {
  const std::vector<SynthTensor> tensors = {{"blk.0.attn_q_b.weight", {512, 48}},
                                            {"blk.1.ffn_down_exps.weight", {256, 32, 4}},
                                            {"blk.1.ffn_up_exps.weight", {256, 32, 4}},
                                            {"blk.1.ffn_norm.weight", {256}},
                                            {"blk.2.attn_k_b.weight", {64, 256, 2}}};
  gguf::Writer w;
  w.set("general.architecture", gguf::MetaValue::string("deepseek2"));
  w.set("deepseek2.block_count", gguf::MetaValue::u32(3));
  for (const auto& t : tensors) EXPECT_TRUE(w.add_tensor(t.name, t.ne, T::F32).ok());
  const std::string path = test::temp_path(file);
  EXPECT_TRUE(w.open(path).ok());
  uint64_t seed = 1;
  for (const auto& t : tensors) {
    uint64_t n = 1;
    for (uint64_t d : t.ne) n *= d;
    const std::vector<float> x = gaussian(n, seed++);
    EXPECT_TRUE(w.write_data({reinterpret_cast<const uint8_t*>(x.data()), x.size() * sizeof(float)}).ok());
  }
  EXPECT_TRUE(w.finish().ok());
  return path;
}

QuantizeFileOptions quiet(WeightScheme s) {
  QuantizeFileOptions o;
  o.scheme = s;
  o.n_threads = 2;
  o.progress = false;
  return o;
}

TEST(QuantizeOverride, AppliedToTheFileWithFallbacksAndWarnings) {
  const std::string src = write_synth("mix-override-src.gguf");
  QuantizeFileOptions o = quiet(WeightScheme::kQ4_K_M);
  for (const char* r : {"blk\\.1\\.ffn_down_exps\\.weight=q8_0", "blk\\.1\\..*=q5_k", "blk\\.2\\..*=q6_k",
                        "nothing\\.matches=q4_0"})
    o.overrides.push_back(parse_override(r).value());
  std::vector<std::string> seen;
  o.on_warning = [&](const std::string& w) { seen.push_back(w); };
  const std::string dst = test::temp_path("mix-override.gguf");
  auto r = quantize_file(src, dst, o);
  ASSERT_TRUE(r.ok()) << r.error().message();
  auto f = gguf::File::open(dst).value();
  EXPECT_EQ(f.tensor("blk.1.ffn_down_exps.weight")->type, T::Q8_0);  // the first rule, not the second
  EXPECT_EQ(f.tensor("blk.1.ffn_up_exps.weight")->type, T::Q5_K);
  EXPECT_EQ(f.tensor("blk.1.ffn_norm.weight")->type, T::F32);   // a vector: never quantized
  EXPECT_EQ(f.tensor("blk.0.attn_q_b.weight")->type, T::Q4_K);  // no rule: the mix
  EXPECT_EQ(f.tensor("blk.2.attn_k_b.weight")->type, T::Q8_0);  // rows of 64: Q6_K falls back
  EXPECT_EQ(r->tensors_overridden, 3u);
  EXPECT_EQ(r->tensors_fallback, 1u);
  ASSERT_EQ(r->fallbacks.size(), 1u);
  EXPECT_EQ(r->fallbacks[0],
            "blk.2.attn_k_b.weight: rows of 64, Q6_K -> Q8_0 (override 'blk\\.2\\..*=q6_k')");
  EXPECT_EQ(seen, r->warnings);
  auto has = [&](const std::string& part) {
    for (const auto& w : r->warnings)
      if (w.find(part) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(has("'nothing\\.matches=q4_0' matches no tensor"));
  EXPECT_TRUE(has("'blk\\.1\\..*=q5_k' matches 1 vector(s) (e.g. 'blk.1.ffn_norm.weight'): kept F32"));
}

TEST(QuantizeMixFile, Q2KWithoutAnImatrixWarns) {
  const std::string src = write_synth("mix-q2k-src.gguf");
  auto r = quantize_file(src, test::temp_path("mix-q2k.gguf"), quiet(WeightScheme::kQ2_K));
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].find("very low-bit type without an importance matrix"), std::string::npos);
  auto f = gguf::File::open(test::temp_path("mix-q2k.gguf")).value();
  EXPECT_EQ(f.tensor("blk.1.ffn_up_exps.weight")->type, T::Q2_K);
  EXPECT_EQ(f.tensor("blk.1.ffn_down_exps.weight")->type, T::Q3_K);
  EXPECT_EQ(f.tensor("blk.2.attn_k_b.weight")->type, T::Q4_0);
  EXPECT_EQ(f.get<uint32_t>("general.file_type").value(), 10u);
  EXPECT_EQ(f.get<uint32_t>("general.quantization_version").value(), 2u);
  EXPECT_FALSE(f.has("quantize.imatrix.file"));
}

// --- the importance matrix

std::vector<float> tensor_floats(const gguf::File& f, const char* name) {
  const gguf::TensorInfo* t = f.tensor(name);
  std::vector<float> out(t->n_elements);
  const uint64_t n = t->ne[0], rows = t->n_elements / n, stride = gguf::row_bytes(t->type, n);
  for (uint64_t r = 0; r < rows; ++r)
    EXPECT_TRUE(
        quant::dequantize_row(t->type, t->data + r * stride, out.data() + r * n, static_cast<int64_t>(n))
            .ok());
  return out;
}

// sum over the elements of matrix `mat` of w[column] * err^2.
double weighted_error(const std::vector<float>& x, const std::vector<float>& y, const std::vector<float>& w,
                      uint64_t mat, uint64_t per_mat) {
  double e = 0;
  for (uint64_t i = mat * per_mat; i < (mat + 1) * per_mat; ++i) {
    const double d = static_cast<double>(x[i]) - y[i];
    e += w[i % w.size()] * d * d;
  }
  return e;
}

// Importance as calibration would give it: a few columns carry far larger activations than the rest.
ImatrixEntry entry(const std::string& name, int64_t n_per_row, int64_t n_mat, int64_t silent_mat = -1) {
  ImatrixEntry e;
  e.name = name;
  e.n_per_row = n_per_row;
  e.n_mat = n_mat;
  for (int64_t m = 0; m < n_mat; ++m) {
    const float count = m == silent_mat ? 0.0f : 10.0f + static_cast<float>(m);
    e.counts.push_back(count);
    for (int64_t c = 0; c < n_per_row; ++c)
      e.sum2.push_back(m == silent_mat ? 0.0f : count * ((c + 3 * m) % 7 == 0 ? 40.0f : 1.0f));
  }
  return e;
}

TEST(QuantizeImatrix, ImportanceLowersTheWeightedErrorPerMatrixAndExpert) {
  const std::string src = write_synth("mix-imatrix-src.gguf");
  Imatrix m;
  m.entries.push_back(entry("blk.0.attn_q_b.weight", 512, 1));
  m.entries.push_back(entry("blk.1.ffn_down_exps.weight", 256, 4, /*silent expert*/ 2));
  m.datasets = {"calibration.txt", "more.txt"};
  m.chunk_count = 12;
  QuantizeFileOptions with = quiet(WeightScheme::kQ4_K_M);
  with.imatrix = &m;
  with.imatrix_path = "model.imatrix.gguf";
  const std::string plain_path = test::temp_path("mix-imatrix-plain.gguf");
  const std::string with_path = test::temp_path("mix-imatrix-with.gguf");
  ASSERT_TRUE(quantize_file(src, plain_path, quiet(WeightScheme::kQ4_K_M)).ok());
  auto r = quantize_file(src, with_path, with);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->tensors_with_imatrix, 2u);
  EXPECT_EQ(r->tensors_without_imatrix, 2u);  // ffn_up_exps, attn_k_b
  EXPECT_EQ(r->experts_without_tokens, 1u);

  auto in = gguf::File::open(src).value();
  auto plain = gguf::File::open(plain_path).value();
  auto got = gguf::File::open(with_path).value();
  EXPECT_EQ(got.get<std::string>("quantize.imatrix.file").value(), "model.imatrix.gguf");
  EXPECT_EQ(got.get<std::string>("quantize.imatrix.dataset").value(), "calibration.txt");
  EXPECT_EQ(got.get<uint32_t>("quantize.imatrix.entries_count").value(), 2u);
  EXPECT_EQ(got.get<uint32_t>("quantize.imatrix.chunks_count").value(), 12u);

  for (const char* name : {"blk.0.attn_q_b.weight", "blk.1.ffn_down_exps.weight"}) {
    SCOPED_TRACE(name);
    const ImatrixEntry* e = m.find(name);
    const std::vector<float> x = tensor_floats(in, name), y0 = tensor_floats(plain, name),
                             y1 = tensor_floats(got, name);
    const uint64_t per_mat = x.size() / static_cast<uint64_t>(e->n_mat);
    const gguf::TensorInfo* t0 = plain.tensor(name);
    const gguf::TensorInfo* t1 = got.tensor(name);
    ASSERT_EQ(t0->type, t1->type);
    const uint64_t mat_bytes = t0->n_bytes / static_cast<uint64_t>(e->n_mat);
    for (int64_t mat = 0; mat < e->n_mat; ++mat) {
      const bool same = std::memcmp(t0->data + mat * mat_bytes, t1->data + mat * mat_bytes, mat_bytes) == 0;
      const std::vector<float> w = mean_squares(*e, mat);
      if (w.empty()) {  // no token reached this expert: quantized as without an imatrix
        EXPECT_TRUE(same) << "matrix " << mat;
        continue;
      }
      EXPECT_FALSE(same) << "matrix " << mat;
      const double e0 = weighted_error(x, y0, w, static_cast<uint64_t>(mat), per_mat);
      const double e1 = weighted_error(x, y1, w, static_cast<uint64_t>(mat), per_mat);
      std::printf("[ figures  ] %s matrix %lld: importance-weighted error %.4g -> %.4g (%.1f%% lower)\n",
                  name, static_cast<long long>(mat), e0, e1, 100 * (1 - e1 / e0));
      EXPECT_LT(e1, 0.9 * e0) << "matrix " << mat;
    }
  }
  // Tensors without an entry are quantized exactly as without an imatrix.
  const gguf::TensorInfo* u0 = plain.tensor("blk.1.ffn_up_exps.weight");
  const gguf::TensorInfo* u1 = got.tensor("blk.1.ffn_up_exps.weight");
  EXPECT_EQ(std::memcmp(u0->data, u1->data, u0->n_bytes), 0);
}

TEST(QuantizeImatrix, AShapeThatContradictsTheTensorIsRefusedNamingBoth) {
  const std::string src = write_synth("mix-imatrix-shape-src.gguf");
  for (const auto& [e, part] :
       {std::pair{entry("blk.0.attn_q_b.weight", 48, 1), "tensor 'blk.0.attn_q_b.weight' is [48, 1]"},
        std::pair{entry("blk.1.ffn_down_exps.weight", 256, 8),
                  "tensor 'blk.1.ffn_down_exps.weight' is [256, 8]"}}) {
    Imatrix m;
    m.entries.push_back(e);
    QuantizeFileOptions o = quiet(WeightScheme::kQ4_K_M);
    o.imatrix = &m;
    auto r = quantize_file(src, test::temp_path("mix-imatrix-shape.gguf"), o);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find(part), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find("needs ["), std::string::npos) << r.error().message();
  }
  Imatrix bad;
  bad.entries.push_back(entry("blk.0.attn_q_b.weight", 512, 1));
  bad.entries.back().sum2[7] = std::nanf("");
  QuantizeFileOptions o = quiet(WeightScheme::kQ4_K_M);
  o.imatrix = &bad;
  auto r = quantize_file(src, test::temp_path("mix-imatrix-nan.gguf"), o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("'blk.0.attn_q_b.weight' has a value nan"), std::string::npos)
      << r.error().message();
}

}  // namespace
}  // namespace onecard::model
