// KL divergence of a model against the saved output of another (`onecard perplexity --kl-divergence-base`).
//
// The base file, little-endian:
//   char     magic[8]      "OCKLBASE"
//   uint32   version       1
//   uint32   n_vocab
//   uint32   n_ctx         tokens per chunk
//   uint32   n_chunks
//   uint32   first_scored  positions first_scored .. n_ctx-1 of each chunk are scored
//   uint32   reserved      0
//   int32    tokens[n_chunks * n_ctx]   as fed to the model (BOS at a chunk's position 0 where there is one)
//   then per scored position, chunk by chunk, (n_ctx - first_scored) of them per chunk:
//   float32  min, scale    the log-softmax of that position's logits is min + scale * q[v]
//   uint32   top           the token of the highest logit (exact, where q may tie)
//   uint16   q[n_vocab]
// 12 + 2 * n_vocab bytes per scored position: 258 KB for a 129K vocabulary. The log-probabilities are rounded
// to within scale / 2 = (max - min) / 131070, about 3e-4 nats for a range of 40.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"

namespace onecard::app {

struct KlBaseInfo {
  uint32_t n_vocab = 0;
  uint32_t n_ctx = 0;
  uint32_t n_chunks = 0;
  uint32_t first_scored = 0;
  std::vector<int32_t> tokens;  // n_chunks * n_ctx

  uint32_t scored_per_chunk() const { return n_ctx - first_scored; }
};

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

// Writes a base file under PATH.part, renamed to PATH by finish(); destroyed unfinished, it removes the part.
class KlBaseWriter {
 public:
  static Result<KlBaseWriter> create(const std::string& path, const KlBaseInfo& info);
  KlBaseWriter(KlBaseWriter&&) noexcept = default;
  KlBaseWriter& operator=(KlBaseWriter&&) noexcept = default;
  ~KlBaseWriter();

  // The logits (n_vocab floats) of the next scored position.
  Status add(const float* logits);
  // Checks that every scored position was added, then closes and renames.
  Status finish();

 private:
  KlBaseWriter() = default;
  std::string path_, part_;
  FilePtr file_;
  uint32_t n_vocab_ = 0;
  uint64_t expected_ = 0, written_ = 0;
  std::vector<uint16_t> q_;
};

// Reads a base file, validated as a whole on open (header, size, token ids) and row by row after.
class KlBaseReader {
 public:
  static Result<KlBaseReader> open(const std::string& path);

  const KlBaseInfo& info() const { return info_; }
  const std::string& path() const { return path_; }
  // The next scored position: its log-softmax (n_vocab values, renormalised after the rounding) and top
  // token.
  Status next(std::vector<float>& log_probs, int32_t& top);

 private:
  KlBaseReader() = default;
  std::string path_;
  FilePtr file_;
  KlBaseInfo info_;
  uint64_t read_ = 0;
  std::vector<uint16_t> q_;
};

// KL(base || model) and the token statistics of one position; `logits` are the model's, `token` the one that
// came next in the text.
struct KlPosition {
  double kld = 0;
  bool same_top = false;
  double nll_model = 0, nll_base = 0;
  double p_model = 0, p_base = 0;  // of `token`
};
Result<KlPosition> compare_position(const float* base_log_probs, int32_t base_top, const float* logits,
                                    uint32_t n_vocab, int32_t token);

struct KlSummary {
  int64_t n = 0;
  double ppl_model = 0, ppl_model_err = 0, ppl_base = 0, ppl_base_err = 0;
  double mean_ln_ratio = 0, mean_ln_ratio_err = 0;  // mean of ln p_base(token) - ln p_model(token)
  double ppl_ratio = 0, ppl_ratio_err = 0;
  double kld_mean = 0, kld_err = 0, kld_min = 0, kld_median = 0, kld_p90 = 0, kld_p95 = 0, kld_p99 = 0,
         kld_max = 0;
  double same_top = 0, same_top_err = 0;  // fractions
  double rms_dp = 0, rms_dp_err = 0;      // of p_model(token) - p_base(token)
};

class KlAccumulator {
 public:
  void add(const KlPosition& p);
  int64_t count() const { return static_cast<int64_t>(kld_.size()); }
  KlSummary summary() const;

 private:
  std::vector<double> kld_;
  double nll_model_ = 0, nll_model_sq_ = 0, nll_base_ = 0, nll_base_sq_ = 0, diff_ = 0, diff_sq_ = 0;
  double dp_sq_ = 0, dp_4_ = 0;
  int64_t same_top_ = 0;
};

// The report `onecard perplexity --kl-divergence` prints.
std::string format_kl_summary(const KlSummary& s);

}  // namespace onecard::app
