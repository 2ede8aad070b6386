// The AVX2 batched kernel: 16 interleaved weight rows (two groups of 8) times a few tokens per pass (one
// group at a time for a block's partial last group).
#include "cpu/x86/avx2/gemm.h"

#include <algorithm>
#include <cassert>
#include <vector>

#include "cpu/isa.h"
#include "cpu/kernels.h"
#include "cpu/scratch.h"
#include "cpu/x86.h"
#include "cpu/x86/avx2/gemm_pass.h"

namespace onecard::cpu::avx2 {
namespace {

constexpr int kGroups = static_cast<int>(kGemmBlockRows / kLanes);
constexpr int kSpanElems = 256;  // columns interleaved at once (several units of the 32-element formats)
// The largest group_unit_bytes times units per span: 256 columns with both sign-trick operands (Q8_0), or a
// 256-element unit with 16 scales and 16 offsets.
constexpr size_t kMaxGroupSpan = 2 * 256 * kLanes + 2 * 16 * kLanes * 4;

// This thread's buffer for one block's sums times `count` tokens, kGemmBlockRows floats per token, 32-byte
// aligned: sums accumulate there per span, since y's rows may lie a multiple of 4 KiB apart.
float* block_sums(int64_t count) {
  thread_local std::vector<float> sums;
  float* p = grow(sums, static_cast<size_t>(count * kGemmBlockRows) + kLanes);
  return p + (kLanes - reinterpret_cast<uintptr_t>(p) / 4 % kLanes) % kLanes;
}

ONECARD_AVX2 void prefetch_lines(const uint8_t* p, int64_t lines) {
  for (int64_t l = 0; l < lines; ++l) _mm_prefetch(reinterpret_cast<const char*>(p) + 64 * l, _MM_HINT_T1);
}

// The file's rows [r0, ..) of w. Their units lie in as many streams as rows, more than the hardware
// prefetcher follows, so the next span's lines are asked for a few at a time between the passes over the
// span before.
class FileRows final : public UnitSource {
 public:
  FileRows(const IntFormat& f, const Matrix& w, int64_t r0)
      : f_(f), unpack_(kernels(Isa::Avx2).unpack[f.type]), w_(w), r0_(r0) {}

  void interleave(int64_t blk, int g, int valid, int64_t u, uint8_t* out) const override {
    interleave_unit(f_, unpack_, w_.row(r0_ + blk * kGemmBlockRows + g * kLanes), w_.row_bytes, valid, u,
                    out);
  }
  int lines(int64_t blk, int64_t rows, int64_t u, int64_t span, Lines* out) const override {
    const size_t len = static_cast<size_t>(span) * f_.unit_bytes;
    const int64_t rb = r0_ + blk * kGemmBlockRows;
    for (int64_t r = rb; r < rb + rows; ++r) out[r - rb] = lines_of(w_.row(r) + u * f_.unit_bytes, len);
    return static_cast<int>(rows);
  }

 private:
  const IntFormat& f_;
  UnpackFn unpack_;
  const Matrix& w_;
  int64_t r0_;
};

// The lines of the next span (UnitSource::lines), asked for a few at a time.
struct NextSpan {
  UnitSource::Lines runs[kGemmBlockRows];
  int count = 0, run = 0;  // runs, and the one asked from
  int64_t line = 0;        // the next line of that run

  // Asks from the first of the `n` runs lines() left in `runs`.
  void begin(int n) {
    count = n;
    run = 0;
    line = 0;
  }
  int64_t total() const {
    int64_t n = 0;
    for (int i = 0; i < count; ++i) n += runs[i].count;
    return n;
  }
  ONECARD_AVX2 void ask(int64_t n) {
    for (; n > 0 && run < count; --n) {
      _mm_prefetch(runs[run].first + 64 * line, _MM_HINT_T0);
      if (++line == runs[run].count) ++run, line = 0;
    }
  }
};

}  // namespace

void gemm_int(const IntFormat& f, const Matrix& w, int64_t r0, int64_t nr, GemmTokens tokens, float* y,
              int64_t ldy, const uint8_t* prefetch, size_t prefetch_bytes) {
  gemm_source(DotInsn::Maddubs, f, FileRows(f, w, r0), nr, w.cols, tokens, y, ldy, prefetch, prefetch_bytes);
}

void gemm_int_vnni(const IntFormat& f, const Matrix& w, int64_t r0, int64_t nr, GemmTokens tokens, float* y,
                   int64_t ldy, const uint8_t* prefetch, size_t prefetch_bytes) {
  gemm_source(DotInsn::Vnni, f, FileRows(f, w, r0), nr, w.cols, tokens, y, ldy, prefetch, prefetch_bytes);
}

void gemm_source(DotInsn dot, const IntFormat& f, const UnitSource& src, int64_t nr, int64_t n,
                 GemmTokens tokens, float* y, int64_t ldy, const uint8_t* prefetch, size_t prefetch_bytes) {
  if (nr <= 0 || tokens.count <= 0) return;
  const int64_t units = n / f.unit, blocks = (nr + kGemmBlockRows - 1) / kGemmBlockRows;
  const int span_max = std::max(1, kSpanElems / f.unit);
  const size_t unit_bytes = group_unit_bytes(f), group_span = unit_bytes * static_cast<size_t>(span_max);
  assert(group_span <= kMaxGroupSpan);
  alignas(32) static thread_local uint8_t buf[kGroups * kMaxGroupSpan];
  float* acc = block_sums(tokens.count);
  const Passes k = dot == DotInsn::Vnni ? vnni_passes(f) : maddubs_passes(f);
  const size_t act_stride = act_block_bytes(f.act), act_levels = f.act == ActFormat::Q8_0 ? 2 : 4;
  const size_t scales_at = static_cast<size_t>(n / f.sub) * 4;
  const auto sums_per_unit = static_cast<size_t>(f.subs()) * 4;  // not divided again in every pass's setup

  // The prefetch range is spread evenly over the spans of every block.
  const int64_t spans = (units + span_max - 1) / span_max, steps = blocks * spans;
  const auto lines = static_cast<int64_t>((prefetch_bytes + 63) / 64);
  const int64_t per_step = (lines + steps - 1) / std::max<int64_t>(1, steps);

  Pass p{};
  p.unit_bytes = unit_bytes;
  p.group_span = group_span;
  p.act_stride = act_stride;
  for (int64_t blk = 0, step = 0; blk < blocks; ++blk) {
    const int64_t rb = blk * kGemmBlockRows, rows = std::min<int64_t>(kGemmBlockRows, nr - rb);
    const int groups = static_cast<int>((rows + kLanes - 1) / kLanes);
    const int last_valid = static_cast<int>(rows - (groups - 1) * kLanes);
    for (int64_t u0 = 0; u0 < units; u0 += span_max, ++step) {
      const int span = static_cast<int>(std::min<int64_t>(span_max, units - u0));
      const int64_t first_line = std::min(lines, step * per_step);
      prefetch_lines(prefetch + 64 * first_line, std::min(per_step, lines - first_line));
      for (int g = 0; g < groups; ++g) {
        const int valid = g == groups - 1 ? last_valid : kLanes;
        for (int uu = 0; uu < span; ++uu)
          src.interleave(blk, g, valid, u0 + uu, buf + g * group_span + uu * unit_bytes);
      }
      // The span after this one: the next of this block, or the first of the next block.
      thread_local NextSpan next;
      int runs = 0;
      if (u0 + span_max < units) {
        runs = src.lines(blk, rows, u0 + span_max, std::min<int64_t>(span_max, units - u0 - span_max),
                         next.runs);
      } else if (blk + 1 < blocks) {
        runs = src.lines(blk + 1, std::min<int64_t>(kGemmBlockRows, nr - rb - kGemmBlockRows), 0,
                         std::min<int64_t>(span_max, units), next.runs);
      } else {
        runs = src.lines_after(std::min<int64_t>(span_max, units), next.runs);
      }
      next.begin(runs);
      const int64_t passes =
          (groups / k.groups + groups % k.groups) * ((tokens.count + k.tokens - 1) / k.tokens);
      const int64_t per_pass = (next.total() + passes - 1) / passes;
      p.span = span;
      p.first = u0 == 0;
      for (int g = 0; g < groups;) {
        // All groups of a block in one pass where the family takes that many.
        const int gp = g + k.groups <= groups ? k.groups : 1;
        for (int64_t t0 = 0; t0 < tokens.count; t0 += k.tokens) {
          const int nt = static_cast<int>(std::min<int64_t>(k.tokens, tokens.count - t0));
          for (int t = 0; t < nt; ++t) {
            p.act[t] = tokens.act[t0 + t] + u0 * act_stride + act_levels;
            p.sums[t] = tokens.side[t0 + t] + u0 * sums_per_unit;
            p.da[t] = reinterpret_cast<const float*>(tokens.side[t0 + t] + scales_at) + u0;
            p.y[t] = acc + (t0 + t) * kGemmBlockRows + g * kLanes;
          }
          next.ask(per_pass);
          p.buf = buf + g * group_span;
          (gp == k.groups ? k.every[nt] : k.one[nt])(p);
        }
        g += gp;
      }
    }
    for (int64_t t = 0; t < tokens.count; ++t) {
      std::copy(acc + t * kGemmBlockRows, acc + t * kGemmBlockRows + rows, y + t * ldy + rb);
    }
  }
}

}  // namespace onecard::cpu::avx2
