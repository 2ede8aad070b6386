// KL divergence in `onecard perplexity`: the base file round-trips and refuses damage, a model against its
// own base gives KL 0 and the same top token everywhere, and a quantized copy's KL agrees with the KL
// computed directly from `onecard logits` of both models.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "app/kl_divergence.h"
#include "common/golden_logits.h"
#include "common/run_command.h"
#include "common/test_paths.h"

namespace onecard {
namespace {

namespace fs = std::filesystem;
using app::KlBaseInfo;
using app::KlBaseReader;
using app::KlBaseWriter;

const std::string kModel = test::golden_dir() + "/models/tiny-v3-bf16.gguf";

std::vector<float> exact_log_softmax(const float* logits, size_t n) {
  double mx = logits[0];
  for (size_t v = 0; v < n; ++v) mx = std::max<double>(mx, logits[v]);
  double z = 0;
  for (size_t v = 0; v < n; ++v) z += std::exp(logits[v] - mx);
  std::vector<float> lp(n);
  for (size_t v = 0; v < n; ++v) lp[v] = static_cast<float>(logits[v] - mx - std::log(z));
  return lp;
}

struct Synthetic {
  KlBaseInfo info;
  std::vector<float> logits;  // per scored position
};

Synthetic synthetic_base() {
  Synthetic s;
  s.info.n_vocab = 300;
  s.info.n_ctx = 8;
  s.info.n_chunks = 2;
  s.info.first_scored = 4;
  std::mt19937 rng(5);
  std::uniform_int_distribution<int32_t> tok(0, 299);
  std::normal_distribution<float> logit(0, 4);
  for (int i = 0; i < 16; ++i) s.info.tokens.push_back(tok(rng));
  s.logits.resize(8 * 300);
  for (float& x : s.logits) x = logit(rng);
  return s;
}

std::string write_synthetic(const std::string& name) {
  const Synthetic s = synthetic_base();
  const std::string path = test::temp_path(name);
  auto w = KlBaseWriter::create(path, s.info);
  EXPECT_TRUE(w.ok()) << w.error().message();
  for (int r = 0; r < 8; ++r) EXPECT_TRUE(w->add(s.logits.data() + r * 300).ok());
  EXPECT_TRUE(w->finish().ok());
  return path;
}

TEST(KlBaseFile, RoundTrips) {
  const Synthetic s = synthetic_base();
  const std::string path = write_synthetic("round-trip.kld");
  EXPECT_FALSE(fs::exists(path + ".part"));
  EXPECT_EQ(fs::file_size(path), 32 + 16 * 4 + 8 * (12 + 2 * 300));
  auto r = KlBaseReader::open(path);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->info().n_vocab, 300u);
  EXPECT_EQ(r->info().n_ctx, 8u);
  EXPECT_EQ(r->info().n_chunks, 2u);
  EXPECT_EQ(r->info().first_scored, 4u);
  EXPECT_EQ(r->info().tokens, s.info.tokens);
  std::vector<float> lp;
  for (int row = 0; row < 8; ++row) {
    int32_t top = -1;
    ASSERT_TRUE(r->next(lp, top).ok());
    const float* x = s.logits.data() + row * 300;
    const std::vector<float> want = exact_log_softmax(x, 300);
    EXPECT_EQ(top, std::max_element(x, x + 300) - x);
    const float range = *std::max_element(x, x + 300) - *std::min_element(x, x + 300);
    for (int v = 0; v < 300; ++v) ASSERT_NEAR(lp[v], want[v], range / 65535.0f) << row << " " << v;
    auto p = app::compare_position(lp.data(), top, x, 300, s.info.tokens[0]);
    ASSERT_TRUE(p.ok());
    EXPECT_LT(p->kld, 1e-6);
    EXPECT_TRUE(p->same_top);
  }
  int32_t top = 0;
  EXPECT_FALSE(r->next(lp, top).ok()) << "read past the last scored position";
}

TEST(KlBaseFile, UnfinishedWriterLeavesNothing) {
  const Synthetic s = synthetic_base();
  const std::string path = test::temp_path("unfinished.kld");
  {
    auto w = KlBaseWriter::create(path, s.info);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->add(s.logits.data()).ok());
    const auto st = w->finish();
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message().find("1 scored positions written, the header says 8"), std::string::npos);
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".part"));
}

std::string open_error(const std::string& path) {
  auto r = KlBaseReader::open(path);
  return r.ok() ? std::string("opened") : r.error().message();
}

TEST(KlBaseFile, DamagedFilesAreRefused) {
  const std::string good = write_synthetic("good.kld");
  const auto size = fs::file_size(good);

  const std::string truncated = test::temp_path("truncated.kld");
  fs::copy_file(good, truncated);
  fs::resize_file(truncated, size - 1);
  EXPECT_NE(open_error(truncated).find(truncated + ": truncated"), std::string::npos)
      << open_error(truncated);

  const std::string trailing = test::temp_path("trailing.kld");
  fs::copy_file(good, trailing);
  fs::resize_file(trailing, size + 2);
  EXPECT_NE(open_error(trailing).find("trailing bytes"), std::string::npos);

  auto patched = [&](const std::string& name, long offset, const void* bytes, size_t n) {
    const std::string p = test::temp_path(name);
    fs::copy_file(good, p);
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(offset);
    f.write(static_cast<const char*>(bytes), static_cast<std::streamsize>(n));
    return p;
  };
  const std::string magic = patched("magic.kld", 0, "GGUF", 4);
  EXPECT_NE(open_error(magic).find(magic + ": magic is not OCKLBASE"), std::string::npos);
  const uint32_t two = 2, big = 1000, zero = 0;
  EXPECT_NE(open_error(patched("version.kld", 8, &two, 4)).find("version is 2"), std::string::npos);
  EXPECT_NE(open_error(patched("vocab.kld", 12, &big, 4)).find("truncated"), std::string::npos);
  EXPECT_NE(open_error(patched("scored.kld", 24, &zero, 4)).find("first_scored is 0"), std::string::npos);
  const int32_t bad_token = 300;
  EXPECT_NE(
      open_error(patched("token.kld", 32 + 4 * 3, &bad_token, 4)).find("token 300 (chunk 0, position 3)"),
      std::string::npos);
  const std::string tiny = test::temp_path("tiny.kld");
  std::ofstream(tiny) << "OCKL";
  EXPECT_NE(open_error(tiny).find("truncated: 4 bytes"), std::string::npos);
}

std::string text_file() {
  const std::string path = test::temp_path("kl-text.txt");
  std::ofstream out(path);
  for (int i = 0; i < 12; ++i)
    out << "Once upon a time there was a little fox who lived in the forest near the river. ";
  return path;
}

// The base file of the golden model over the fixed text, made once.
const std::string& base_file() {
  static const std::string path = [] {
    const std::string p = test::temp_path("golden.kld");
    const auto r =
        test::run_onecard("perplexity -m '" + kModel + "' -f '" + text_file() +
                          "' -c 64 --chunks 3 --kv-type f32 -t 2 --kl-divergence-base '" + p + "'");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("saved 3 chunks and the log-probabilities of 96 tokens"), std::string::npos)
        << r.err;
    return p;
  }();
  return path;
}

double field(const std::string& out, const std::string& name) {
  const size_t at = out.find(name);
  if (at == std::string::npos) return NAN;
  return std::stod(out.substr(out.find(':', at) + 1));
}

TEST(PerplexityKlDivergence, ModelAgainstItsOwnBase) {
  const auto r = test::run_onecard("perplexity -m '" + kModel + "' --kl-divergence-base '" + base_file() +
                                   "' --kl-divergence --kv-type f32 -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LT(field(r.out, "Mean KLD"), 1e-6) << r.out;
  EXPECT_LT(field(r.out, "Maximum KLD"), 1e-5) << r.out;
  EXPECT_DOUBLE_EQ(field(r.out, "Same top p"), 100.0) << r.out;
  EXPECT_NEAR(field(r.out, "\nPPL(model)/PPL(base)"), 1.0, 1e-4) << r.out;
  EXPECT_NE(r.out.find("96 scored tokens"), std::string::npos) << r.out;
}

std::vector<float> logits_of(const std::string& model, const std::string& tokens, const std::string& out) {
  const auto r =
      test::run_onecard("logits -m '" + model + "' --tokens '" + tokens + "' --out '" + out + "' -t 2");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return test::read_all<float>(out);
}

TEST(PerplexityKlDivergence, QuantizedCopyAgreesWithDirectKl) {
  const std::string q = test::temp_path("golden-q4_k_m.gguf");
  auto r = test::run_onecard("quantize '" + kModel + "' '" + q + "' --type q4_k_m -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = test::run_onecard("perplexity -m '" + q + "' --kl-divergence-base '" + base_file() +
                        "' --kl-divergence --kv-type f32 -t 2 --chunks 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const double reported = field(r.out, "Mean KLD");

  // The same positions from the full logits of both models, chunk by chunk.
  auto base = KlBaseReader::open(base_file());
  ASSERT_TRUE(base.ok()) << base.error().message();
  const KlBaseInfo& info = base->info();
  double sum = 0, max_range = 0;
  int n = 0;
  for (uint32_t c = 0; c < 2; ++c) {
    const std::string tokens = test::temp_path("chunk.i32");
    std::ofstream(tokens, std::ios::binary)
        .write(reinterpret_cast<const char*>(info.tokens.data() + c * info.n_ctx), 4 * info.n_ctx);
    const auto lb = logits_of(kModel, tokens, test::temp_path("base.f32"));
    const auto lq = logits_of(q, tokens, test::temp_path("q.f32"));
    ASSERT_EQ(lb.size(), info.n_ctx * info.n_vocab);
    ASSERT_EQ(lq.size(), lb.size());
    for (uint32_t i = info.first_scored; i < info.n_ctx; ++i) {
      const float* b = lb.data() + (i - 1) * info.n_vocab;  // the row that predicts token i
      const auto pb = exact_log_softmax(b, info.n_vocab);
      const auto pq = exact_log_softmax(lq.data() + (i - 1) * info.n_vocab, info.n_vocab);
      double kld = 0;
      for (uint32_t v = 0; v < info.n_vocab; ++v) kld += std::exp(pb[v]) * (pb[v] - pq[v]);
      sum += kld;
      ++n;
      max_range = std::max<double>(
          max_range, *std::max_element(b, b + info.n_vocab) - *std::min_element(b, b + info.n_vocab));
    }
  }
  const double direct = sum / n;
  EXPECT_GT(direct, 1e-3);
  // Each log-probability of the base is within half a step of the compression.
  EXPECT_NEAR(reported, direct, max_range / 65535) << r.out;
  EXPECT_LT(field(r.out, "Same top p"), 100.0);
  EXPECT_NE(r.out.find("64 scored tokens"), std::string::npos) << r.out;
}

TEST(PerplexityKlDivergence, MismatchedOrDamagedBaseIsRefused) {
  const std::string kl = " --kl-divergence-base '" + base_file() + "' --kl-divergence";
  auto r = test::run_onecard("perplexity -m '" + test::golden_dir() + "/models/tiny-v2lite-f16.gguf'" + kl);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(base_file() + ": n_vocab is 512 but"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("has 384 tokens"), std::string::npos) << r.err;

  r = test::run_onecard("perplexity -m '" + kModel + "' -c 32" + kl);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(base_file() + ": n_ctx is 64 but -c is 32"), std::string::npos) << r.err;

  const std::string cut = test::temp_path("cut.kld");
  fs::copy_file(base_file(), cut);
  fs::resize_file(cut, fs::file_size(cut) / 2);
  r = test::run_onecard("perplexity -m '" + kModel + "' --kl-divergence-base '" + cut + "' --kl-divergence");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(cut + ": truncated"), std::string::npos) << r.err;

  r = test::run_onecard("perplexity -m '" + kModel + "' --kl-divergence-base '" + text_file() +
                        "' --kl-divergence");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("magic is not OCKLBASE"), std::string::npos) << r.err;

  r = test::run_onecard("perplexity -m '" + kModel + "' --kl-divergence");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--kl-divergence needs --kl-divergence-base"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace onecard
