#include "app/kl_divergence.h"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

namespace onecard::app {
namespace {

static_assert(std::endian::native == std::endian::little, "the base file is written in host byte order");

constexpr char kMagic[8] = {'O', 'C', 'K', 'L', 'B', 'A', 'S', 'E'};
constexpr uint32_t kVersion = 1;
constexpr uint64_t kHeaderBytes = 32;
constexpr double kLevels = 65535;

struct Header {
  char magic[8];
  uint32_t version, n_vocab, n_ctx, n_chunks, first_scored, reserved;
};
static_assert(sizeof(Header) == kHeaderBytes);

uint64_t row_bytes(uint32_t n_vocab) {
  return 12 + 2 * uint64_t{n_vocab};
}

uint64_t scored_rows(const KlBaseInfo& i) {
  return uint64_t{i.n_chunks} * i.scored_per_chunk();
}

uint64_t file_bytes(const KlBaseInfo& i) {
  return kHeaderBytes + 4 * uint64_t{i.n_chunks} * i.n_ctx + scored_rows(i) * row_bytes(i.n_vocab);
}

// ln of the sum of exp(logits), with the largest logit's index.
double log_sum_exp(const float* logits, uint32_t n, uint32_t& top) {
  top = static_cast<uint32_t>(std::max_element(logits, logits + n) - logits);
  const double mx = logits[top];
  double z = 0;
  for (uint32_t v = 0; v < n; ++v) z += std::exp(logits[v] - mx);
  return mx + std::log(z);
}

bool all_finite(const float* x, uint32_t n) {
  return std::all_of(x, x + n, [](float v) { return std::isfinite(v); });
}

double std_err(double sum, double sum_sq, int64_t n) {
  if (n < 2) return 0;
  const double mean = sum / static_cast<double>(n);
  const double var = std::max(0.0, sum_sq / static_cast<double>(n) - mean * mean);
  return std::sqrt(var / static_cast<double>(n - 1));
}

// Linear interpolation between the closest ranks of a sorted list.
double quantile(const std::vector<double>& sorted, double q) {
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

}  // namespace

Result<KlBaseWriter> KlBaseWriter::create(const std::string& path, const KlBaseInfo& info) {
  if (info.tokens.size() != uint64_t{info.n_chunks} * info.n_ctx || info.first_scored == 0 ||
      info.first_scored >= info.n_ctx || info.n_vocab == 0)
    return make_error("{}: inconsistent base file layout", path);
  KlBaseWriter w;
  w.path_ = path;
  w.part_ = path + ".part";
  w.file_.reset(std::fopen(w.part_.c_str(), "wb"));
  if (!w.file_) return make_error("{}: cannot create: {}", w.part_, std::strerror(errno));
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.version = kVersion;
  h.n_vocab = info.n_vocab;
  h.n_ctx = info.n_ctx;
  h.n_chunks = info.n_chunks;
  h.first_scored = info.first_scored;
  if (std::fwrite(&h, sizeof h, 1, w.file_.get()) != 1 ||
      std::fwrite(info.tokens.data(), 4, info.tokens.size(), w.file_.get()) != info.tokens.size())
    return make_error("{}: cannot write", w.part_);
  w.n_vocab_ = info.n_vocab;
  w.expected_ = scored_rows(info);
  w.q_.resize(info.n_vocab);
  return w;
}

KlBaseWriter::~KlBaseWriter() {
  if (!file_) return;
  file_.reset();
  std::error_code ec;
  std::filesystem::remove(part_, ec);
}

Status KlBaseWriter::add(const float* logits) {
  if (written_ == expected_) return make_error("{}: more scored positions than the header's", part_);
  if (!all_finite(logits, n_vocab_))
    return make_error("{}: scored position {} has non-finite logits", part_, written_);
  uint32_t top = 0;
  const double lse = log_sum_exp(logits, n_vocab_, top);
  const auto [lo, hi] = std::minmax_element(logits, logits + n_vocab_);
  const double min = *lo - lse;
  const double scale = (*hi - *lo) / kLevels;
  for (uint32_t v = 0; v < n_vocab_; ++v) {
    const double level = scale > 0 ? std::round((logits[v] - *lo) / scale) : 0;
    q_[v] = static_cast<uint16_t>(std::clamp(level, 0.0, kLevels));
  }
  const float head[2] = {static_cast<float>(min), static_cast<float>(scale)};
  if (std::fwrite(head, sizeof head, 1, file_.get()) != 1 || std::fwrite(&top, 4, 1, file_.get()) != 1 ||
      std::fwrite(q_.data(), 2, q_.size(), file_.get()) != q_.size())
    return make_error("{}: cannot write", part_);
  ++written_;
  return {};
}

Status KlBaseWriter::finish() {
  if (written_ != expected_)
    return make_error("{}: {} scored positions written, the header says {}", part_, written_, expected_);
  std::FILE* f = file_.release();
  if (std::fflush(f) != 0 || fsync(fileno(f)) != 0) {
    std::fclose(f);
    return make_error("{}: cannot write: {}", part_, std::strerror(errno));
  }
  if (std::fclose(f) != 0) return make_error("{}: cannot write", part_);
  std::error_code ec;
  std::filesystem::rename(part_, path_, ec);
  if (ec) {
    std::filesystem::remove(part_, ec);
    return make_error("{}: cannot rename to {}: {}", part_, path_, ec.message());
  }
  return {};
}

Result<KlBaseReader> KlBaseReader::open(const std::string& path) {
  KlBaseReader r;
  r.path_ = path;
  r.file_.reset(std::fopen(path.c_str(), "rb"));
  if (!r.file_) return make_error("{}: cannot open: {}", path, std::strerror(errno));
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) return make_error("{}: cannot read its size: {}", path, ec.message());
  Header h{};
  if (size < kHeaderBytes || std::fread(&h, sizeof h, 1, r.file_.get()) != 1)
    return make_error("{}: truncated: {} bytes, shorter than the {}-byte header", path, size, kHeaderBytes);
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0)
    return make_error("{}: magic is not OCKLBASE: not a KL-divergence base file", path);
  if (h.version != kVersion)
    return make_error("{}: version is {}, this onecard reads version {}", path, h.version, kVersion);
  if (h.n_vocab == 0) return make_error("{}: n_vocab is 0", path);
  if (h.n_chunks == 0) return make_error("{}: n_chunks is 0", path);
  if (h.n_ctx < 2) return make_error("{}: n_ctx is {}, fewer than 2", path, h.n_ctx);
  if (h.first_scored == 0 || h.first_scored >= h.n_ctx)
    return make_error("{}: first_scored is {}, outside 1..{} (n_ctx - 1)", path, h.first_scored, h.n_ctx - 1);
  KlBaseInfo& i = r.info_;
  i.n_vocab = h.n_vocab;
  i.n_ctx = h.n_ctx;
  i.n_chunks = h.n_chunks;
  i.first_scored = h.first_scored;
  if (size != file_bytes(i)) {
    return make_error("{}: {}: {} bytes, the header (n_vocab {}, n_ctx {}, n_chunks {}) needs {}", path,
                      size < file_bytes(i) ? "truncated" : "trailing bytes", size, i.n_vocab, i.n_ctx,
                      i.n_chunks, file_bytes(i));
  }
  i.tokens.resize(uint64_t{i.n_chunks} * i.n_ctx);
  if (std::fread(i.tokens.data(), 4, i.tokens.size(), r.file_.get()) != i.tokens.size())
    return make_error("{}: cannot read the tokens", path);
  for (size_t k = 0; k < i.tokens.size(); ++k) {
    if (i.tokens[k] < 0 || static_cast<uint32_t>(i.tokens[k]) >= i.n_vocab)
      return make_error("{}: token {} (chunk {}, position {}) is outside the vocabulary of {}", path,
                        i.tokens[k], k / i.n_ctx, k % i.n_ctx, i.n_vocab);
  }
  r.q_.resize(i.n_vocab);
  return r;
}

Status KlBaseReader::next(std::vector<float>& log_probs, int32_t& top) {
  const uint32_t n = info_.n_vocab;
  float head[2];
  uint32_t t = 0;
  if (read_ == scored_rows(info_) || std::fread(head, sizeof head, 1, file_.get()) != 1 ||
      std::fread(&t, 4, 1, file_.get()) != 1 || std::fread(q_.data(), 2, n, file_.get()) != n)
    return make_error("{}: cannot read scored position {}", path_, read_);
  if (!std::isfinite(head[0]) || !std::isfinite(head[1]) || head[1] < 0 || t >= n)
    return make_error("{}: scored position {} has a bad min/scale/top ({}, {}, {})", path_, read_, head[0],
                      head[1], t);
  log_probs.resize(n);
  double z = 0;
  for (uint32_t v = 0; v < n; ++v) {
    log_probs[v] = head[0] + head[1] * static_cast<float>(q_[v]);
    z += std::exp(static_cast<double>(log_probs[v]));
  }
  const auto shift = static_cast<float>(std::log(z));
  for (float& lp : log_probs) lp -= shift;
  top = static_cast<int32_t>(t);
  ++read_;
  return {};
}

Result<KlPosition> compare_position(const float* base_log_probs, int32_t base_top, const float* logits,
                                    uint32_t n_vocab, int32_t token) {
  if (!all_finite(logits, n_vocab)) return make_error("the model's logits are not all finite");
  uint32_t top = 0;
  const double lse = log_sum_exp(logits, n_vocab, top);
  KlPosition p;
  for (uint32_t v = 0; v < n_vocab; ++v) {
    const double lb = base_log_probs[v];
    p.kld += std::exp(lb) * (lb - (logits[v] - lse));
  }
  // Never below 0 but by rounding.
  p.kld = std::max(0.0, p.kld);
  p.same_top = static_cast<int32_t>(top) == base_top;
  p.nll_model = lse - logits[token];
  p.nll_base = -static_cast<double>(base_log_probs[token]);
  p.p_model = std::exp(-p.nll_model);
  p.p_base = std::exp(-p.nll_base);
  return p;
}

void KlAccumulator::add(const KlPosition& p) {
  kld_.push_back(p.kld);
  nll_model_ += p.nll_model;
  nll_model_sq_ += p.nll_model * p.nll_model;
  nll_base_ += p.nll_base;
  nll_base_sq_ += p.nll_base * p.nll_base;
  const double d = p.nll_model - p.nll_base;
  diff_ += d;
  diff_sq_ += d * d;
  const double dp2 = (p.p_model - p.p_base) * (p.p_model - p.p_base);
  dp_sq_ += dp2;
  dp_4_ += dp2 * dp2;
  same_top_ += p.same_top ? 1 : 0;
}

KlSummary KlAccumulator::summary() const {
  KlSummary s;
  s.n = count();
  if (s.n == 0) return s;
  const auto n = static_cast<double>(s.n);
  s.ppl_model = std::exp(nll_model_ / n);
  s.ppl_model_err = s.ppl_model * std_err(nll_model_, nll_model_sq_, s.n);
  s.ppl_base = std::exp(nll_base_ / n);
  s.ppl_base_err = s.ppl_base * std_err(nll_base_, nll_base_sq_, s.n);
  s.mean_ln_ratio = diff_ / n;
  s.mean_ln_ratio_err = std_err(diff_, diff_sq_, s.n);
  s.ppl_ratio = std::exp(s.mean_ln_ratio);
  s.ppl_ratio_err = s.ppl_ratio * s.mean_ln_ratio_err;
  double sum = 0, sum_sq = 0;
  for (const double k : kld_) {
    sum += k;
    sum_sq += k * k;
  }
  s.kld_mean = sum / n;
  s.kld_err = std_err(sum, sum_sq, s.n);
  std::vector<double> sorted = kld_;
  std::sort(sorted.begin(), sorted.end());
  s.kld_min = sorted.front();
  s.kld_median = quantile(sorted, 0.5);
  s.kld_p90 = quantile(sorted, 0.90);
  s.kld_p95 = quantile(sorted, 0.95);
  s.kld_p99 = quantile(sorted, 0.99);
  s.kld_max = sorted.back();
  s.same_top = static_cast<double>(same_top_) / n;
  s.same_top_err = s.n > 1 ? std::sqrt(s.same_top * (1 - s.same_top) / (n - 1)) : 0;
  const double ms = dp_sq_ / n;
  s.rms_dp = std::sqrt(ms);
  // The delta method on the mean of the squares.
  s.rms_dp_err = s.rms_dp > 0 ? std_err(dp_sq_, dp_4_, s.n) / (2 * s.rms_dp) : 0;
  return s;
}

std::string format_kl_summary(const KlSummary& s) {
  std::string out = fmt::format("====== Perplexity statistics ({} scored tokens) ======\n", s.n);
  out += fmt::format("PPL(model)                    : {:10.4f} +/- {:.4f}\n", s.ppl_model, s.ppl_model_err);
  out += fmt::format("PPL(base)                     : {:10.4f} +/- {:.4f}\n", s.ppl_base, s.ppl_base_err);
  out += fmt::format("Mean ln(PPL(model)/PPL(base)) : {:10.6f} +/- {:.6f}\n", s.mean_ln_ratio,
                     s.mean_ln_ratio_err);
  out += fmt::format("PPL(model)/PPL(base)          : {:10.6f} +/- {:.6f}\n", s.ppl_ratio, s.ppl_ratio_err);
  out += "====== KL divergence statistics ======\n";
  out += fmt::format("Mean KLD   : {:10.6f} +/- {:.6f}\n", s.kld_mean, s.kld_err);
  out += fmt::format("Maximum KLD: {:10.6f}\n", s.kld_max);
  out += fmt::format("99.0%   KLD: {:10.6f}\n", s.kld_p99);
  out += fmt::format("95.0%   KLD: {:10.6f}\n", s.kld_p95);
  out += fmt::format("90.0%   KLD: {:10.6f}\n", s.kld_p90);
  out += fmt::format("Median  KLD: {:10.6f}\n", s.kld_median);
  out += fmt::format("Minimum KLD: {:10.6f}\n", s.kld_min);
  out += "====== Token probability statistics ======\n";
  out += fmt::format("RMS dp     : {:8.4f} +/- {:.4f} %\n", 100 * s.rms_dp, 100 * s.rms_dp_err);
  out += fmt::format("Same top p : {:8.4f} +/- {:.4f} %\n", 100 * s.same_top, 100 * s.same_top_err);
  return out;
}

}  // namespace onecard::app
