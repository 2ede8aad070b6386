#include "quant/quantize.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>

#include "base/half.h"
#include "quant/dequantize.h"
#include "quant/iq_tables.h"

namespace onecard::quant {
namespace {

// Below this magnitude a group is treated as all zero: its scale would be a denormal that fp16 cannot hold.
constexpr float kTiny = 1e-30f;

// fp16 bits of a scale, saturated at the largest finite half: an infinite scale would turn the zero levels
// of a block into NaN, a saturated one merely clips values beyond what the format can hold.
uint16_t scale_to_fp16(float d) {
  return fp32_to_fp16(std::clamp(d, -65504.0f, 65504.0f));
}

int nearest(float v) {
  return static_cast<int>(std::lrintf(v));
}
int clamp_int(int v, int lo, int hi) {
  return std::min(hi, std::max(lo, v));
}

// nullptr (unit weights) when the group's weights are absent or all zero, so that a group nobody weighs is
// still quantized sensibly rather than to an arbitrary scale.
const float* usable_weights(const float* w, int n) {
  if (w == nullptr) return nullptr;
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += w[i];
  return sum > 0 ? w : nullptr;
}

// The element of largest magnitude (0 for an all-zero group).
float largest(const float* x, int n) {
  float amax = 0, mx = 0;
  for (int i = 0; i < n; ++i) {
    if (std::abs(x[i]) > amax) {
      amax = std::abs(x[i]);
      mx = x[i];
    }
  }
  return mx;
}

// The least-squares search of a symmetric (signed-scale) fit: level index index(iscale * x) of value
// value(index). Tries plain_iscale, then what `candidates` offers, then iterates rounding and refitting from
// the best; the error of the refitted d is sum(w x^2) - sxq^2 / sqq, so the best assignment maximizes
// sxq^2 / sqq. Leaves the best levels in q and returns its d, or nothing when every candidate rounded all
// weighted elements to 0.
template <class Index, class Value, class Candidates>
std::optional<float> search_scale(const float* x, const float* w, int n, int* q, float plain_iscale,
                                  Index index, Value value, Candidates candidates) {
  double best_score = -1;
  float best_scale = 0;
  int trial[kQK_K];
  auto attempt = [&](float iscale) {
    double sxq = 0, sqq = 0;
    for (int i = 0; i < n; ++i) {
      const int t = index(iscale * x[i]);
      trial[i] = t;
      const double wi = w ? w[i] : 1.0, v = value(t);
      sxq += wi * x[i] * v;
      sqq += wi * v * v;
    }
    if (sqq <= 0) return false;
    const double score = sxq * sxq / sqq;
    if (score <= best_score) return false;
    best_score = score;
    best_scale = static_cast<float>(sxq / sqq);
    std::copy(trial, trial + n, q);
    return true;
  };
  attempt(plain_iscale);
  candidates(attempt);
  for (int it = 0; it < 4 && best_scale != 0; ++it) {
    if (!attempt(1.0f / best_scale)) break;
  }
  if (best_score < 0) return std::nullopt;
  return best_scale;
}

// Chooses a scale d and levels q[i] in [lo, hi] with x[i] ≈ d * q[i], minimizing sum(w[i] (x[i] - d q[i])^2).
// Plain mode maps the largest magnitude to the extreme level on its side (the wider one when both fit).
// The search tries inverse scales around those mappings on both sides, refits d by least squares for each
// level assignment, and then iterates rounding and refitting from the best one; the plain assignment is
// among the candidates, so the search never does worse. Returns d (0 for an all-zero group, q then 0).
float fit_scale(const float* x, const float* w_in, int n, int lo, int hi, int* q, bool search) {
  const float mx = largest(x, n);
  if (std::abs(mx) < kTiny) {
    std::fill(q, q + n, 0);
    return 0;
  }
  const float plain_iscale =
      (lo < 0 && -lo >= hi) ? static_cast<float>(lo) / mx : static_cast<float>(hi) / mx;
  auto index = [&](float v) { return clamp_int(nearest(v), lo, hi); };
  if (search) {
    // On a symmetric range (Q8_0's -127..127) the hi side's candidates are the lo side's negated: rounding
    // and clamping are symmetric, so they give the negated levels and exactly the same score, which never
    // wins a tie. Skipping them halves Q8_0's search and changes no output.
    const bool hi_side = hi > 0 && lo != -hi;
    const std::optional<float> d = search_scale(
        x, usable_weights(w_in, n), n, q, plain_iscale, index, [](int t) { return static_cast<double>(t); },
        [&](auto& attempt) {
          for (int k = -10; k <= 10; ++k) {
            if (lo < 0) attempt((static_cast<float>(lo) - 0.1f * static_cast<float>(k)) / mx);
            if (hi_side) attempt((static_cast<float>(hi) + 0.1f * static_cast<float>(k)) / mx);
          }
        });
    if (d) return *d;
  }
  for (int i = 0; i < n; ++i) q[i] = index(plain_iscale * x[i]);
  return 1.0f / plain_iscale;
}

// Chooses scale >= 0, min >= 0 and q[i] in [0, nmax] with x[i] ≈ scale * q[i] - min (the K formats store the
// offset as a non-negative min, so a group whose values are all positive gets min 0). Plain mode spans
// [min(x, 0), max(x)] with the nmax + 1 levels. The search tries spans around that one, solves the weighted
// least-squares problem for (scale, offset) of each assignment, and iterates from the best.
void fit_affine(const float* x, const float* w_in, int n, int nmax, int* q, float* scale, float* min) {
  float lo = 0, hi = x[0];
  for (int i = 0; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  if (hi - lo < kTiny) {
    std::fill(q, q + n, 0);
    *scale = 0;
    *min = -lo;
    return;
  }
  const float* w = usable_weights(w_in, n);
  double best_err = std::numeric_limits<double>::infinity();
  float best_s = 0, best_o = lo;
  int trial[kQK_K];
  auto attempt = [&](float iscale, float off) {
    double sw = 0, sq = 0, sqq = 0, sx = 0, sxq = 0;
    for (int i = 0; i < n; ++i) {
      const int t = clamp_int(nearest(iscale * (x[i] - off)), 0, nmax);
      trial[i] = t;
      const double wi = w ? w[i] : 1.0;
      sw += wi;
      sq += wi * t;
      sqq += wi * t * t;
      sx += wi * x[i];
      sxq += wi * x[i] * t;
    }
    double s = 0, o = 0;
    const double det = sw * sqq - sq * sq;
    if (det > 0) {
      s = (sw * sxq - sq * sx) / det;
      o = (sqq * sx - sq * sxq) / det;
    }
    if (det <= 0 || o > 0 || s < 0) {  // offset must stay <= 0: fit the scale alone
      o = 0;
      s = sqq > 0 ? std::max(0.0, sxq / sqq) : 0;
    }
    double err = 0;
    for (int i = 0; i < n; ++i) {
      const double r = x[i] - (s * trial[i] + o);
      err += (w ? w[i] : 1.0) * r * r;
    }
    if (err >= best_err) return false;
    best_err = err;
    best_s = static_cast<float>(s);
    best_o = static_cast<float>(o);
    std::copy(trial, trial + n, q);
    return true;
  };
  const float span = hi - lo;
  attempt(static_cast<float>(nmax) / span, lo);
  for (int k = -10; k <= 10; ++k)
    attempt((static_cast<float>(nmax) + 0.1f * static_cast<float>(k)) / span, lo);
  for (int it = 0; it < 4 && best_s > 0; ++it) {
    if (!attempt(1.0f / best_s, best_o)) break;
  }
  *scale = best_s;
  *min = -best_o;
}

void fit_affine_plain(const float* x, int n, int nmax, int* q, float* scale, float* min) {
  float lo = 0, hi = x[0];
  for (int i = 0; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  *min = -lo;
  if (hi - lo < kTiny) {
    std::fill(q, q + n, 0);
    *scale = 0;
    return;
  }
  const float iscale = static_cast<float>(nmax) / (hi - lo);
  for (int i = 0; i < n; ++i) q[i] = clamp_int(nearest(iscale * (x[i] - lo)), 0, nmax);
  *scale = 1.0f / iscale;
}

// Weight of a sub-block scale's error in the elements' error: an error e in the scale moves element i by e
// q[i].
float scale_weight(const float* w, const int* q, int n) {
  double s = 0;
  for (int i = 0; i < n; ++i) s += (w ? w[i] : 1.0) * q[i] * q[i];
  return static_cast<float>(s);
}

// Weight of a sub-block min's error: it moves every element by the same amount.
float min_weight(const float* w, int n) {
  if (w == nullptr) return static_cast<float>(n);
  double s = 0;
  for (int i = 0; i < n; ++i) s += w[i];
  return static_cast<float>(s);
}

// Nearest level of x for a stored scale and offset (optimal once they are fixed).
int requantize(float x, float scale, float offset, int lo, int hi) {
  if (scale == 0) return clamp_int(0, lo, hi);
  return clamp_int(nearest((x - offset) / scale), lo, hi);
}

// Sub-block scales and mins of the affine K formats (Q2_K, Q4_K, Q5_K): per sub-block fits, then the scales
// and mins themselves quantized to `levels` steps of two fp16 super-scales, and the elements re-rounded.
struct AffineK {
  uint16_t d, dmin;
  int ls[16], lm[16];
  int q[kQK_K];
};

AffineK fit_affine_k(const float* x, const float* w, int sub, int nmax, int levels, bool search) {
  const int nsub = kQK_K / sub;
  AffineK r{};
  float sc[16], mn[16], wsc[16], wmn[16];
  for (int k = 0; k < nsub; ++k) {
    const float* xs = x + sub * k;
    const float* ws = w ? w + sub * k : nullptr;
    if (search) {
      fit_affine(xs, ws, sub, nmax, r.q + sub * k, &sc[k], &mn[k]);
    } else {
      fit_affine_plain(xs, sub, nmax, r.q + sub * k, &sc[k], &mn[k]);
    }
    wsc[k] = scale_weight(ws, r.q + sub * k, sub);
    wmn[k] = min_weight(ws, sub);
  }
  const float d = fit_scale(sc, wsc, nsub, 0, levels, r.ls, search);
  const float dmin = fit_scale(mn, wmn, nsub, 0, levels, r.lm, search);
  r.d = scale_to_fp16(d);
  r.dmin = scale_to_fp16(dmin);
  const float d16 = fp16_to_fp32(r.d), dmin16 = fp16_to_fp32(r.dmin);
  for (int k = 0; k < nsub; ++k) {
    const float s = d16 * static_cast<float>(r.ls[k]);
    const float m = dmin16 * static_cast<float>(r.lm[k]);
    for (int i = sub * k; i < sub * (k + 1); ++i) r.q[i] = requantize(x[i], s, -m, 0, nmax);
  }
  return r;
}

// The symmetric K formats (Q3_K, Q6_K): signed sub-block scales quantized to [slo, shi] steps of one fp16
// super-scale.
struct SymmetricK {
  uint16_t d;
  int ls[16];
  int q[kQK_K];
};

SymmetricK fit_symmetric_k(const float* x, const float* w, int qlo, int qhi, int slo, int shi, bool search) {
  constexpr int kSub = 16;
  SymmetricK r{};
  float sc[16], wsc[16];
  for (int k = 0; k < kQK_K / kSub; ++k) {
    const float* ws = w ? w + kSub * k : nullptr;
    sc[k] = fit_scale(x + kSub * k, ws, kSub, qlo, qhi, r.q + kSub * k, search);
    wsc[k] = scale_weight(ws, r.q + kSub * k, kSub);
  }
  r.d = scale_to_fp16(fit_scale(sc, wsc, kQK_K / kSub, slo, shi, r.ls, search));
  const float d16 = fp16_to_fp32(r.d);
  for (int k = 0; k < kQK_K / kSub; ++k) {
    const float s = d16 * static_cast<float>(r.ls[k]);
    for (int i = kSub * k; i < kSub * (k + 1); ++i) r.q[i] = requantize(x[i], s, 0, qlo, qhi);
  }
  return r;
}

void pack_k_scales(const int* ls, const int* lm, uint8_t* s) {
  std::memset(s, 0, 12);
  for (int j = 0; j < 8; ++j) {
    const auto sc = static_cast<uint8_t>(ls[j]), m = static_cast<uint8_t>(lm[j]);
    if (j < 4) {
      s[j] |= sc;
      s[j + 4] |= m;
    } else {
      s[j + 4] = static_cast<uint8_t>((sc & 0xf) | ((m & 0xf) << 4));
      s[j - 4] |= static_cast<uint8_t>((sc >> 4) << 6);
      s[j] |= static_cast<uint8_t>((m >> 4) << 6);
    }
  }
}

// The 2-bit planes of Q2_K and Q3_K: element e in byte 32 (e / 128) + e % 32, bits 2 ((e % 128) / 32).
void pack_2bit(const int* q, uint8_t* qs) {
  std::memset(qs, 0, kQK_K / 4);
  for (int e = 0; e < kQK_K; ++e) {
    qs[32 * (e / 128) + e % 32] |= static_cast<uint8_t>((q[e] & 3) << (2 * ((e % 128) / 32)));
  }
}

// Index of the IQ4_NL level nearest v. Midpoints between levels are multiples of 0.5 (the levels are
// integers), so the nearest level is constant on each [k/2, (k+1)/2): one table lookup on floor(2v).
constexpr int kIq4Span = 2 * 128;  // 2v in [-kIq4Span, kIq4Span) covers every level and midpoint
constexpr auto kIq4Nearest = [] {
  std::array<uint8_t, 2 * kIq4Span> t{};
  for (int k = -kIq4Span; k < kIq4Span; ++k) {
    const float v = 0.5f * static_cast<float>(k) + 0.25f;  // inside the half-step
    int best = 0;
    for (int j = 1; j < 16; ++j) {
      const float dj = v - static_cast<float>(kIq4nlValues[static_cast<size_t>(j)]);
      const float db = v - static_cast<float>(kIq4nlValues[static_cast<size_t>(best)]);
      if ((dj < 0 ? -dj : dj) < (db < 0 ? -db : db)) best = j;
    }
    t[static_cast<size_t>(k + kIq4Span)] = static_cast<uint8_t>(best);
  }
  return t;
}();

int nearest_iq4(float v) {
  if (!(v > -128.0f)) return 0;
  if (v >= 127.0f) return 15;
  return kIq4Nearest[static_cast<size_t>(static_cast<int>(std::floor(2.0f * v)) + kIq4Span)];
}

float iq4_level(int q) {
  return static_cast<float>(kIq4nlValues[static_cast<size_t>(q)]);
}

// Chooses a signed scale d and level indices q[i] with x[i] ≈ d * kIq4nlValues[q[i]], minimizing
// sum(w[i] (x[i] - d v[q[i]])^2). The levels are not symmetric (-127 .. 113), so the largest magnitude is
// tried at both ends: plain mode maps it to -127 (the wider end, the sign of d absorbing the value's), the
// search tries inverse scales within about 15% of either mapping, refits d by least squares for each
// assignment and iterates from the best. Returns d (0 for an all-zero group).
float fit_iq4(const float* x, const float* w_in, int n, int* q, bool search) {
  const float mx = largest(x, n);
  if (std::abs(mx) < kTiny) {
    std::fill(q, q + n, nearest_iq4(0));
    return 0;
  }
  const float plain_iscale = iq4_level(0) / mx;
  if (!search) {
    for (int i = 0; i < n; ++i) q[i] = nearest_iq4(plain_iscale * x[i]);
    return 1.0f / plain_iscale;
  }
  auto value = [](int t) { return static_cast<double>(iq4_level(t)); };
  return search_scale(x, usable_weights(w_in, n), n, q, plain_iscale, nearest_iq4, value,
                      [&](auto& attempt) {
                        for (int k = -9; k <= 9; ++k) {
                          attempt((iq4_level(0) + 2.0f * static_cast<float>(k)) / mx);
                          attempt((iq4_level(15) + 2.0f * static_cast<float>(k)) / mx);
                        }
                      })
      .value_or(0.0f);
}

const float* block_weights(const QuantizeOptions& opt, int64_t b, int block) {
  return opt.search && opt.importance ? opt.importance + b * block : nullptr;
}

double mean_square(const float* x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * x[i];
  return s / static_cast<double>(n);
}

// The weights the search minimizes when an importance vector is given, as llama.cpp's quantizers form them:
// element i counts imp[i] * sqrt(sigma2 + x[i]^2). The importance (mean squared input of the column) says how
// far a column's error moves the output; alone it lets the search trade a group's large values for the
// small ones of an important column, which raised the plain error and the tail of the KL divergence. The
// magnitude keeps large values exact, and sigma2 (a multiple of the group's or row's mean square) keeps the
// small ones from being ignored. Returns nullptr (unit weights) without importance, so that path is
// untouched.
const float* magnitude_weights(const float* imp, const float* x, int n, double sigma2, float* out) {
  if (imp == nullptr) return nullptr;
  for (int i = 0; i < n; ++i) {
    out[i] = imp[i] * static_cast<float>(std::sqrt(sigma2 + static_cast<double>(x[i]) * x[i]));
  }
  return out;
}

// The same with sigma2 = factor * the block's own mean square: llama.cpp takes factor 2 for Q3_K, Q4_K,
// Q5_K, IQ4_NL and IQ4_XS, 1 for Q2_K.
const float* block_magnitude_weights(const QuantizeOptions& opt, const float* xb, int64_t b, int block,
                                     double factor, float* out) {
  const float* imp = block_weights(opt, b, block);
  if (imp == nullptr) return nullptr;
  return magnitude_weights(imp, xb, block, factor * mean_square(xb, block), out);
}

}  // namespace

void quantize_f32(const float* x, float* y, int64_t n) {
  std::memmove(y, x, static_cast<size_t>(n) * sizeof(float));
}

void quantize_f16(const float* x, uint16_t* y, int64_t n) {
  auto* p = reinterpret_cast<uint8_t*>(y);
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = fp32_to_fp16(x[i]);
    std::memcpy(p + 2 * i, &h, 2);
  }
}

void quantize_bf16(const float* x, uint16_t* y, int64_t n) {
  auto* p = reinterpret_cast<uint8_t*>(y);
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = fp32_to_bf16(x[i]);
    std::memcpy(p + 2 * i, &h, 2);
  }
}

// Q4_0 and Q8_0 floor the magnitude weights with the row's mean square, as llama.cpp's Q4_0 does (its Q8_0
// ignores the importance; here it is used the same way as Q4_0's).
void quantize_q4_0(const float* x, BlockQ4_0* y, int64_t n, const QuantizeOptions& opt) {
  const double sigma2 = opt.search && opt.importance ? mean_square(x, n) : 0;
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* xb = x + b * kQK;
    int q[kQK];
    float wbuf[kQK];
    const float* w = magnitude_weights(block_weights(opt, b, kQK), xb, kQK, sigma2, wbuf);
    const float d = fit_scale(xb, w, kQK, -8, 7, q, opt.search);
    y[b].d = scale_to_fp16(d);
    const float d16 = fp16_to_fp32(y[b].d);
    for (int j = 0; j < kQK; ++j) q[j] = requantize(xb[j], d16, 0, -8, 7) + 8;
    for (int j = 0; j < kQK / 2; ++j) y[b].qs[j] = static_cast<uint8_t>(q[j] | (q[j + kQK / 2] << 4));
  }
}

void quantize_q8_0(const float* x, BlockQ8_0* y, int64_t n, const QuantizeOptions& opt) {
  const double sigma2 = opt.search && opt.importance ? mean_square(x, n) : 0;
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* xb = x + b * kQK;
    int q[kQK];
    float wbuf[kQK];
    const float* w = magnitude_weights(block_weights(opt, b, kQK), xb, kQK, sigma2, wbuf);
    const float d = fit_scale(xb, w, kQK, -127, 127, q, opt.search);
    y[b].d = scale_to_fp16(d);
    const float d16 = fp16_to_fp32(y[b].d);
    for (int j = 0; j < kQK; ++j) y[b].qs[j] = static_cast<int8_t>(requantize(xb[j], d16, 0, -127, 127));
  }
}

void quantize_q8_1(const float* x, BlockQ8_1* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* xb = x + b * kQK;
    float amax = 0;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::abs(xb[j]));
    y[b].d = scale_to_fp16(amax / 127.0f);
    const float d16 = fp16_to_fp32(y[b].d);
    int sum = 0;
    for (int j = 0; j < kQK; ++j) {
      const int q = requantize(xb[j], d16, 0, -127, 127);
      y[b].qs[j] = static_cast<int8_t>(q);
      sum += q;
    }
    y[b].s = scale_to_fp16(d16 * static_cast<float>(sum));
  }
}

void quantize_q8_k(const float* x, BlockQ8_K* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float* xb = x + b * kQK_K;
    float amax = 0;
    for (int j = 0; j < kQK_K; ++j) amax = std::max(amax, std::abs(xb[j]));
    const float d = amax < kTiny ? 0.0f : amax / 127.0f;
    y[b].d = d;
    for (int g = 0; g < kQK_K / 16; ++g) {
      int sum = 0;
      for (int j = 16 * g; j < 16 * (g + 1); ++j) {
        const int q = requantize(xb[j], d, 0, -127, 127);
        y[b].qs[j] = static_cast<int8_t>(q);
        sum += q;
      }
      y[b].bsums[g] = static_cast<int16_t>(sum);
    }
  }
}

void quantize_q2_k(const float* x, BlockQ2_K* y, int64_t n, const QuantizeOptions& opt) {
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float* xb = x + b * kQK_K;
    float wbuf[kQK_K];
    const AffineK r =
        fit_affine_k(xb, block_magnitude_weights(opt, xb, b, kQK_K, 1.0, wbuf), 16, 3, 15, opt.search);
    y[b].d = r.d;
    y[b].dmin = r.dmin;
    for (int k = 0; k < 16; ++k) y[b].scales[k] = static_cast<uint8_t>(r.ls[k] | (r.lm[k] << 4));
    pack_2bit(r.q, y[b].qs);
  }
}

void quantize_q3_k(const float* x, BlockQ3_K* y, int64_t n, const QuantizeOptions& opt) {
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float* xb = x + b * kQK_K;
    float wbuf[kQK_K];
    const SymmetricK r = fit_symmetric_k(xb, block_magnitude_weights(opt, xb, b, kQK_K, 2.0, wbuf), -4, 3,
                                         -32, 31, opt.search);
    y[b].d = r.d;
    std::memset(y[b].scales, 0, sizeof(y[b].scales));
    for (int k = 0; k < 16; ++k) {
      const int v = r.ls[k] + 32;
      y[b].scales[k % 8] |= static_cast<uint8_t>((v & 0xf) << (k < 8 ? 0 : 4));
      y[b].scales[8 + k % 4] |= static_cast<uint8_t>((v >> 4) << (2 * (k / 4)));
    }
    int u[kQK_K];
    for (int e = 0; e < kQK_K; ++e) u[e] = r.q[e] + 4;
    pack_2bit(u, y[b].qs);
    std::memset(y[b].hmask, 0, sizeof(y[b].hmask));
    for (int e = 0; e < kQK_K; ++e) {
      if (u[e] & 4) y[b].hmask[e % 32] |= static_cast<uint8_t>(1u << (e / 32));
    }
  }
}

void quantize_q4_k(const float* x, BlockQ4_K* y, int64_t n, const QuantizeOptions& opt) {
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float* xb = x + b * kQK_K;
    float wbuf[kQK_K];
    const AffineK r =
        fit_affine_k(xb, block_magnitude_weights(opt, xb, b, kQK_K, 2.0, wbuf), 32, 15, 63, opt.search);
    y[b].d = r.d;
    y[b].dmin = r.dmin;
    pack_k_scales(r.ls, r.lm, y[b].scales);
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        y[b].qs[32 * c + l] = static_cast<uint8_t>(r.q[64 * c + l] | (r.q[64 * c + 32 + l] << 4));
      }
    }
  }
}

void quantize_q5_k(const float* x, BlockQ5_K* y, int64_t n, const QuantizeOptions& opt) {
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float* xb = x + b * kQK_K;
    float wbuf[kQK_K];
    const AffineK r =
        fit_affine_k(xb, block_magnitude_weights(opt, xb, b, kQK_K, 2.0, wbuf), 32, 31, 63, opt.search);
    y[b].d = r.d;
    y[b].dmin = r.dmin;
    pack_k_scales(r.ls, r.lm, y[b].scales);
    std::memset(y[b].qh, 0, sizeof(y[b].qh));
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        const int lo = r.q[64 * c + l], hi = r.q[64 * c + 32 + l];
        y[b].qs[32 * c + l] = static_cast<uint8_t>((lo & 0xf) | ((hi & 0xf) << 4));
        y[b].qh[l] |= static_cast<uint8_t>(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
      }
    }
  }
}

// Importance alone, as in llama.cpp, whose Q6_K leaves the magnitude weighting out: at 6 bits trading
// columns costs little plain error.
void quantize_q6_k(const float* x, BlockQ6_K* y, int64_t n, const QuantizeOptions& opt) {
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const SymmetricK r =
        fit_symmetric_k(x + b * kQK_K, block_weights(opt, b, kQK_K), -32, 31, -128, 127, opt.search);
    y[b].d = r.d;
    for (int k = 0; k < 16; ++k) y[b].scales[k] = static_cast<int8_t>(r.ls[k]);
    std::memset(y[b].ql, 0, sizeof(y[b].ql));
    std::memset(y[b].qh, 0, sizeof(y[b].qh));
    for (int e = 0; e < kQK_K; ++e) {
      const int u = r.q[e] + 32;
      const int h = e / 128, i = (e % 128) / 32, l = e % 32;
      y[b].ql[64 * h + 32 * (i & 1) + l] |= static_cast<uint8_t>((u & 0xf) << (4 * (i >> 1)));
      y[b].qh[32 * h + l] |= static_cast<uint8_t>((u >> 4) << (2 * i));
    }
  }
}

void quantize_iq4_nl(const float* x, BlockIQ4_NL* y, int64_t n, const QuantizeOptions& opt) {
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* xb = x + b * kQK;
    int q[kQK];
    float wbuf[kQK];
    const float* w = block_magnitude_weights(opt, xb, b, kQK, 2.0, wbuf);
    y[b].d = scale_to_fp16(fit_iq4(xb, w, kQK, q, opt.search));
    const float d16 = fp16_to_fp32(y[b].d);
    for (int j = 0; j < kQK; ++j) q[j] = d16 == 0 ? nearest_iq4(0) : nearest_iq4(xb[j] / d16);
    for (int j = 0; j < kQK / 2; ++j) y[b].qs[j] = static_cast<uint8_t>(q[j] | (q[j + kQK / 2] << 4));
  }
}

// Per group of 32 a scale fitted to the non-linear levels, then the eight scales as 6-bit signed multiples
// [-32, 31] of one fp16 super-scale (weighted by how much each scale's error moves its elements), then every
// element re-rounded to its stored group scale.
void quantize_iq4_xs(const float* x, BlockIQ4_XS* y, int64_t n, const QuantizeOptions& opt) {
  constexpr int kSub = 32, kGroups = kQK_K / kSub;
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float* xb = x + b * kQK_K;
    float wbuf[kQK_K];
    const float* wb = block_magnitude_weights(opt, xb, b, kQK_K, 2.0, wbuf);
    int q[kQK_K], ls[kGroups];
    float sc[kGroups], wsc[kGroups];
    for (int g = 0; g < kGroups; ++g) {
      const float* ws = wb ? wb + kSub * g : nullptr;
      sc[g] = fit_iq4(xb + kSub * g, ws, kSub, q + kSub * g, opt.search);
      double s = 0;
      for (int i = 0; i < kSub; ++i)
        s += (ws ? ws[i] : 1.0) * iq4_level(q[kSub * g + i]) * iq4_level(q[kSub * g + i]);
      wsc[g] = static_cast<float>(s);
    }
    y[b].d = scale_to_fp16(fit_scale(sc, wsc, kGroups, -32, 31, ls, opt.search));
    const float d16 = fp16_to_fp32(y[b].d);
    std::memset(y[b].scales_l, 0, sizeof(y[b].scales_l));
    y[b].scales_h = 0;
    for (int g = 0; g < kGroups; ++g) {
      const int u = ls[g] + 32;
      y[b].scales_l[g / 2] |= static_cast<uint8_t>((u & 0xf) << (4 * (g % 2)));
      y[b].scales_h = static_cast<uint16_t>(y[b].scales_h | ((u >> 4) << (2 * g)));
      const float dl = d16 * static_cast<float>(ls[g]);
      for (int j = 0; j < kSub; ++j) {
        const int e = kSub * g + j;
        q[e] = dl == 0 ? nearest_iq4(0) : nearest_iq4(xb[e] / dl);
      }
      for (int j = 0; j < kSub / 2; ++j) {
        y[b].qs[16 * g + j] = static_cast<uint8_t>(q[kSub * g + j] | (q[kSub * g + j + 16] << 4));
      }
    }
  }
}

bool can_quantize(gguf::GgmlType type) {
  using gguf::GgmlType;
  switch (type) {
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::BF16:
    case GgmlType::Q4_0:
    case GgmlType::Q8_0:
    case GgmlType::Q8_1:
    case GgmlType::Q2_K:
    case GgmlType::Q3_K:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K:
    case GgmlType::Q8_K:
    case GgmlType::IQ4_NL:
    case GgmlType::IQ4_XS:
      return true;
    default:
      return false;
  }
}

Status quantize_row(gguf::GgmlType type, const float* src, void* dst, int64_t n, const float* importance) {
  QuantizeOptions opt;
  opt.importance = importance;
  return quantize_row(type, src, dst, n, opt);
}

Status quantize_row(gguf::GgmlType type, const float* src, void* dst, int64_t n, const QuantizeOptions& opt) {
  using gguf::GgmlType;
  ONECARD_TRY(check_row_length(type, n));
  switch (type) {
    case GgmlType::F32:
      quantize_f32(src, static_cast<float*>(dst), n);
      break;
    case GgmlType::F16:
      quantize_f16(src, static_cast<uint16_t*>(dst), n);
      break;
    case GgmlType::BF16:
      quantize_bf16(src, static_cast<uint16_t*>(dst), n);
      break;
    case GgmlType::Q4_0:
      quantize_q4_0(src, static_cast<BlockQ4_0*>(dst), n, opt);
      break;
    case GgmlType::Q8_0:
      quantize_q8_0(src, static_cast<BlockQ8_0*>(dst), n, opt);
      break;
    case GgmlType::Q8_1:
      quantize_q8_1(src, static_cast<BlockQ8_1*>(dst), n);
      break;
    case GgmlType::Q2_K:
      quantize_q2_k(src, static_cast<BlockQ2_K*>(dst), n, opt);
      break;
    case GgmlType::Q3_K:
      quantize_q3_k(src, static_cast<BlockQ3_K*>(dst), n, opt);
      break;
    case GgmlType::Q4_K:
      quantize_q4_k(src, static_cast<BlockQ4_K*>(dst), n, opt);
      break;
    case GgmlType::Q5_K:
      quantize_q5_k(src, static_cast<BlockQ5_K*>(dst), n, opt);
      break;
    case GgmlType::Q6_K:
      quantize_q6_k(src, static_cast<BlockQ6_K*>(dst), n, opt);
      break;
    case GgmlType::Q8_K:
      quantize_q8_k(src, static_cast<BlockQ8_K*>(dst), n);
      break;
    case GgmlType::IQ4_NL:
      quantize_iq4_nl(src, static_cast<BlockIQ4_NL*>(dst), n, opt);
      break;
    case GgmlType::IQ4_XS:
      quantize_iq4_xs(src, static_cast<BlockIQ4_XS*>(dst), n, opt);
      break;
    default:
      return make_error("{}: no quantizer for this type (row of {} elements)", gguf::type_name(type), n);
  }
  return {};
}

Status quantize_rows(gguf::GgmlType type, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const QuantizeOptions& opt) {
  if (nrows < 0) return make_error("{}: negative row count {}", gguf::type_name(type), nrows);
  ONECARD_TRY(check_row_length(type, n_per_row));
  const uint64_t stride = gguf::row_bytes(type, static_cast<uint64_t>(n_per_row));
  auto* out = static_cast<uint8_t*>(dst);
  for (int64_t r = 0; r < nrows; ++r) {
    ONECARD_TRY(
        quantize_row(type, src + r * n_per_row, out + static_cast<uint64_t>(r) * stride, n_per_row, opt));
  }
  return {};
}

}  // namespace onecard::quant
