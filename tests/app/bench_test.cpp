// `onecard bench` as a user runs it on a synthetic model made by `onecard gen`, and the weight bytes per
// token it reports, checked against a sum over the file's tensor list.
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "app/weight_traffic.h"
#include "common/run_command.h"
#include "common/test_paths.h"
#include "gguf/file.h"
#include "model/hparams.h"
#include "synth/generate.h"

namespace onecard {
namespace {

using nlohmann::json;

const std::string& tiny_model() {
  static const std::string path = [] {
    const std::string p = test::temp_path("bench-tiny.gguf");
    const auto r = test::run_onecard("gen --preset tiny --quiet -o '" + p + "'");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return p;
  }();
  return path;
}

std::vector<json> json_lines(const std::string& out) {
  std::vector<json> lines;
  size_t start = 0;
  while (start < out.size()) {
    const size_t end = out.find('\n', start);
    const std::string line = out.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!line.empty()) lines.push_back(json::parse(line));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return lines;
}

TEST(BenchCommand, JsonLinePerTest) {
  const auto r = test::run_onecard("bench -m '" + tiny_model() + "' --json -p 8 -n 4 -r 2 -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<json> lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_EQ(lines[0]["test"], "pp8");
  EXPECT_EQ(lines[0]["n_prompt"], 8);
  EXPECT_EQ(lines[0]["n_gen"], 0);
  EXPECT_EQ(lines[1]["test"], "tg4");
  EXPECT_EQ(lines[1]["n_prompt"], 0);
  EXPECT_EQ(lines[1]["n_gen"], 4);
  for (const json& j : lines) {
    EXPECT_EQ(j["model"], "bench-tiny.gguf");
    EXPECT_GT(j["size_bytes"].get<uint64_t>(), 0u);
    EXPECT_GT(j["params"].get<uint64_t>(), 0u);
    EXPECT_EQ(j["depth"], 0);
    EXPECT_EQ(j["threads"], 2);
    EXPECT_EQ(j["reps"], 2);
    EXPECT_GT(j["tokens_per_s"].get<double>(), 0.0);
    EXPECT_GE(j["sd"].get<double>(), 0.0);
    ASSERT_EQ(j["samples_ts"].size(), 2u);
    for (const json& s : j["samples_ts"]) EXPECT_GT(s.get<double>(), 0.0);
    EXPECT_FALSE(j["isa"].get<std::string>().empty());
    EXPECT_GT(j["peak_rss_bytes"].get<uint64_t>(), 0u);
    EXPECT_GT(j["weight_bytes_per_token"].get<uint64_t>(), 0u);
    EXPECT_LT(j["weight_bytes_per_token"].get<uint64_t>(), j["size_bytes"].get<uint64_t>());
  }
  // Progress is on stderr only: stdout holds nothing but the two lines.
  EXPECT_NE(r.err.find("tg4 rep 2 of 2"), std::string::npos) << r.err;
}

TEST(BenchCommand, DepthNamesTheTestAndTheTableHasAFooter) {
  const auto r = test::run_onecard("bench -m '" + tiny_model() + "' -p 0 -n 3 -r 1 --depth 16 -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(" tg3@d16 |"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("pp"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("GB/s of weights at tg"), std::string::npos) << r.out;
}

TEST(BenchCommand, ErrorsAreClean) {
  auto r = test::run_onecard("bench -m /nonexistent.gguf -p 8 -n 4");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/nonexistent.gguf: cannot open"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;

  const std::string model = "-m '" + tiny_model() + "'";
  r = test::run_onecard("bench " + model + " -p 8 -n 4 -c 64 --depth 60");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--ctx-size 64 is too small"), std::string::npos) << r.err;

  // Beyond the tiny model's training context of 256.
  r = test::run_onecard("bench " + model + " -p 8 -n 0 --depth 300");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("training context is 256"), std::string::npos) << r.err;

  r = test::run_onecard("bench " + model + " -p 0 -n 0");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("nothing to measure"), std::string::npos) << r.err;

  for (const char* bad : {"-r 0", "-p -1", "-n x", "--depth -2", "-b 0"}) {
    r = test::run_onecard("bench " + model + " " + bad);
    EXPECT_NE(r.exit_code, 0) << bad;
    EXPECT_NE(r.err.find("--"), std::string::npos) << bad << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << bad << ": " << r.out;
  }
}

// Every tensor of decode layers and the head in full, but one row of the embedding and k of E routed
// experts, from the tensor list alone.
uint64_t bytes_from_tensor_list(const gguf::File& f, const model::HParams& hp) {
  uint64_t sum = 0;
  const bool has_split = f.tensor("blk.0.attn_k_b.weight") != nullptr;
  for (const gguf::TensorInfo& t : f.tensors()) {
    const std::string name(t.name);
    if (name.starts_with("blk.")) {
      const uint32_t layer = static_cast<uint32_t>(std::stoul(name.substr(4)));
      if (layer >= hp.n_layer - hp.n_nextn) continue;  // MTP
      if (has_split && name.ends_with("attn_kv_b.weight")) continue;
    }
    const uint64_t row = gguf::row_bytes(t.type, t.ne[0]);
    if (name == "token_embd.weight") {
      sum += row;
    } else if (name.find("_exps.") != std::string::npos) {
      EXPECT_EQ(t.ne[2], hp.n_expert) << name;
      sum += row * t.ne[1] * hp.n_expert_used;
    } else {
      sum += row * t.ne[1] * t.ne[2] * t.ne[3];
    }
  }
  return sum;
}

struct TrafficCase {
  const char* name;  // of the test case and its file
  const char* preset;
  synth::Overrides overrides;
};

void PrintTo(const TrafficCase& c, std::ostream* os) {
  *os << c.name;
}

class WeightTraffic : public ::testing::TestWithParam<TrafficCase> {};

TEST_P(WeightTraffic, MatchesTheTensorList) {
  const TrafficCase& c = GetParam();
  auto spec = synth::make_spec(c.preset, c.overrides);
  ASSERT_TRUE(spec.ok()) << spec.error().message();
  const std::string path = test::temp_path(fmt::format("traffic-{}.gguf", c.name));
  const auto gen = synth::generate(spec.value(), path, false);
  ASSERT_TRUE(gen.ok()) << gen.error().message();
  auto file = gguf::File::open(path);
  ASSERT_TRUE(file.ok()) << file.error().message();
  auto hp = model::read_hparams(file.value());
  ASSERT_TRUE(hp.ok()) << hp.error().message();
  ASSERT_GT(hp->n_expert, hp->n_expert_used);

  const auto bytes = app::weight_bytes_per_token(file.value(), hp.value());
  ASSERT_TRUE(bytes.ok()) << bytes.error().message();
  EXPECT_EQ(bytes.value(), bytes_from_tensor_list(file.value(), hp.value()));
  uint64_t all = 0;
  for (const gguf::TensorInfo& t : file->tensors()) all += t.n_bytes;
  EXPECT_LT(bytes.value(), all);
}

synth::Overrides split_q4() {
  synth::Overrides o;
  o.type = model::WeightScheme::kQ4_K_M;
  o.mla = model::MlaLayout::kSplit;
  return o;
}

INSTANTIATE_TEST_SUITE_P(Presets, WeightTraffic,
                         ::testing::Values(TrafficCase{"tiny", "tiny", {}},
                                           TrafficCase{"tiny_split_q4_k_m", "tiny", split_q4()},
                                           TrafficCase{"tiny_v2lite", "tiny-v2lite", {}}),
                         [](const ::testing::TestParamInfo<TrafficCase>& p) {
                           return std::string(p.param.name);
                         });

TEST(WeightTraffic, MissingTensorIsNamed) {
  auto spec = synth::make_spec("tiny");
  ASSERT_TRUE(spec.ok());
  const std::string path = test::temp_path("traffic-missing.gguf");
  ASSERT_TRUE(synth::generate(spec.value(), path, false).ok());
  auto file = gguf::File::open(path);
  ASSERT_TRUE(file.ok());
  auto hp = model::read_hparams(file.value());
  ASSERT_TRUE(hp.ok());
  hp->n_layer += 1;  // a decode layer the file does not have
  const auto bytes = app::weight_bytes_per_token(file.value(), hp.value());
  ASSERT_FALSE(bytes.ok());
  EXPECT_NE(bytes.error().message().find("blk.3.attn_norm.weight"), std::string::npos)
      << bytes.error().message();
}

}  // namespace
}  // namespace onecard
