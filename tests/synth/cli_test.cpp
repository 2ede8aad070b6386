// Runs the built `onecard gen` as a user would.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "common/test_paths.h"
#include "gguf/file.h"
#include "model/hparams.h"

namespace onecard::synth {
namespace {

struct CmdResult {
  int status = -1;
  std::string output;  // stdout and stderr
};

CmdResult run(const std::string& args) {
  CmdResult r;
  const std::string cmd = test::onecard_binary() + " " + args + " 2>&1";
  std::FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) r.output.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

TEST(SynthGenCli, WritesTinyAndSummarises) {
  const std::string path = test::temp_path("cli-tiny.gguf");
  const CmdResult r = run("gen --preset tiny --mla split --seed 7 -o " + path);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find(path + ": "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("tensors"), std::string::npos) << r.output;
  const auto f = gguf::File::open(path);
  ASSERT_TRUE(f.ok()) << f.error().message();
  const auto hp = model::read_hparams(f.value());
  ASSERT_TRUE(hp.ok()) << hp.error().message();
  EXPECT_EQ(hp->layout, model::MlaLayout::kSplit);
  EXPECT_EQ(hp->n_layer, 3u);
  EXPECT_EQ(std::filesystem::file_size(path), f->file_size());
}

TEST(SynthGenCli, Help) {
  const CmdResult r = run("gen --help");
  EXPECT_EQ(r.status, 0);
  for (const char* s :
       {"--preset", "tiny, tiny-v2lite, demo, v3-slice, r1", "--header-only", "--out", "--type", "q4_k_m",
        "--mla", "--layers", "--dense-layers", "--experts", "--vocab", "--seed"}) {
    EXPECT_NE(r.output.find(s), std::string::npos) << s << "\n" << r.output;
  }
}

TEST(SynthGenCli, Errors) {
  const std::string path = test::temp_path("cli-bad.gguf");
  CmdResult r = run("gen --preset huge -o " + path);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("unknown preset 'huge' (valid: tiny, tiny-v2lite, demo, v3-slice, r1)"),
            std::string::npos)
      << r.output;
  r = run("gen --preset tiny --type q3_k -o " + path);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("valid: f32, f16, bf16, q8_0, q4_k, q6_k, q4_k_m"), std::string::npos) << r.output;
  r = run("gen --preset tiny");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--out"), std::string::npos) << r.output;
  r = run("gen --preset tiny -o /nonexistent-dir/x.gguf");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("/nonexistent-dir/x.gguf"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace onecard::synth
