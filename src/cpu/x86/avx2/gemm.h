// The batched int8 product for AVX2 (prefill, and the experts of a MoE batch). Weight rows lie in the 8 int32
// lanes of a ymm register: one weight block (unit) of 8 rows at a time is interleaved so that each 32-byte
// vector holds 4 consecutive columns of 8 rows, as the unsigned levels of the integer view (int_format.h). A
// token's 4 activation bytes are broadcast as the signed operand of vpmaddubsw, so one instruction advances 8
// rows of one token by 4 columns, and a weight vector loaded once serves several tokens.
//
// vpmaddubsw adds its two products into a saturating int16, so the sums are widened to int32 (vpmaddwd) as
// often as the format's largest level requires: a 4-bit format accumulates a whole 32-column sub-block in
// int16, the grids with levels up to 126 widen after every instruction. The formats whose levels span all 8
// bits (Q8_0, IQ4_NL, IQ4_XS: biased by 128) are multiplied as signed values with the sign trick, |w| times a
// with w's sign, which cannot saturate; their interleaved units hold both |w| and w.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cpu/gemm.h"
#include "cpu/int_format.h"
#include "cpu/matrix.h"

namespace onecard::cpu::avx2 {

// Rows per interleaved group: one per int32 lane.
inline constexpr int kLanes = 8;
// Rows one interleaving pass covers (two groups); the kernel table hands this to callers as block_rows.
inline constexpr int64_t kGemmBlockRows = 16;

// The instruction that multiplies the levels with the activations: vpmaddubsw (AVX2), or vpdpbusd on ymm
// (AVX-VNNI), which sums into int32 without the int16 steps and their widening. The layout is the same.
enum class DotInsn { Maddubs, Vnni };

// y[t * ldy + i] = row r0 + i of w times token t, for i < nr and t < tokens.count. Other entries of y are not
// touched. prefetch / prefetch_bytes name the weights the thread multiplies next (may be null / 0).
// gemm_int_vnni needs AVX-VNNI.
void gemm_int(const IntFormat& f, const Matrix& w, int64_t r0, int64_t nr, GemmTokens tokens, float* y,
              int64_t ldy, const uint8_t* prefetch, size_t prefetch_bytes);
void gemm_int_vnni(const IntFormat& f, const Matrix& w, int64_t r0, int64_t nr, GemmTokens tokens, float* y,
                   int64_t ldy, const uint8_t* prefetch, size_t prefetch_bytes);

// Where one call's weight units come from: the file's rows (gemm_int) or the packed layout (packed.h).
class UnitSource {
 public:
  virtual ~UnitSource() = default;
  // Unit u of group g (8 rows) of the call's block blk (rows 16 blk ..) interleaved into out (32-byte
  // aligned, the layout of interleave_unit); only the first `valid` rows of the group exist.
  virtual void interleave(int64_t blk, int g, int valid, int64_t u, uint8_t* out) const = 0;
  // A run of consecutive cache lines.
  struct Lines {
    const char* first;  // 64-byte aligned
    int64_t count;
  };
  // The cache lines of units [u, u + span) of the `rows` rows of block blk, as at most kGemmBlockRows runs
  // into out (their count returned), fetched while the span before computes.
  virtual int lines(int64_t blk, int64_t rows, int64_t u, int64_t span, Lines* out) const = 0;
  // The lines of the first `span` units that the thread most likely reads after this call, where the source
  // can tell (none where it cannot), asked for during the call's last span so that the next call does not
  // begin on a cold span.
  virtual int lines_after(int64_t /*span*/, Lines* /*out*/) const { return 0; }

  // The whole lines holding bytes [p, p + len).
  static Lines lines_of(const uint8_t* p, size_t len) {
    const auto first = reinterpret_cast<uintptr_t>(p) & ~uintptr_t{63};
    return {reinterpret_cast<const char*>(first),
            static_cast<int64_t>((reinterpret_cast<uintptr_t>(p) + len - first + 63) / 64)};
  }
};

// y[t * ldy + i] = row i of src times token t, for i < nr and t < tokens.count, the rows being n columns
// long (gemm_int's contract).
void gemm_source(DotInsn dot, const IntFormat& f, const UnitSource& src, int64_t nr, int64_t n,
                 GemmTokens tokens, float* y, int64_t ldy, const uint8_t* prefetch, size_t prefetch_bytes);

// The largest unsigned level of a format's integer view (its levels lie in [0, max_level]).
int max_level(const IntFormat& f);

// Q2_K, Q3_K, Q4_K and Q6_K keep their sub-block scales as the small integers of the file, so that the kernel
// applies them to the int16 sums with the vpmaddwd that widens those anyway and converts to float once per
// 256 columns instead of once per sub-block.
bool int_scales(const IntFormat& f);

// One unit of one group: levels [unit / 4][8 rows][4 bytes] (for the formats biased by 128: [unit / 4][|w|,
// w] [8 rows][4 bytes], signed), then
// - for int_scales formats: the integer scales [subs][8] as int32 holding the scale in both int16 halves; the
//   unit's d [8] as floats; the integer offsets of sub-block pairs [subs / 2][8] as int16 pairs (low half the
//   even sub-block), which multiply the activation sums of those sub-blocks: the mins of the affine formats,
//   -z * scale of the others; for affine formats the mins' multiplier -dmin [8] as floats;
// - otherwise: scales s [subs][8] and, for affine formats, offsets m [subs][8] as floats.
inline size_t group_unit_bytes(const IntFormat& f) {
  const auto subs = static_cast<size_t>(f.subs()), lane_words = size_t{kLanes} * 4;
  const size_t levels = static_cast<size_t>(f.unit) * kLanes * (f.zero == 128 ? 2 : 1);
  if (int_scales(f)) return levels + (subs + 1 + subs / 2 + (f.affine ? 1 : 0)) * lane_words;
  return levels + subs * lane_words * (f.affine ? 2 : 1);
}

// One unit of a group stored transposed by dwords (packed.h), interleaved into out as interleave_unit does
// from the file's rows. Q2_K, Q4_K and Q6_K.
void interleave_packed_unit(const IntFormat& f, const uint8_t* in, uint8_t* out);

// Unit u of the 8 rows starting at row0, row_bytes apart, interleaved into out (32-byte aligned) through
// `unpack` (the table's unpacker for f). Only the first `valid` rows exist; the lanes beyond repeat the last.
void interleave_unit(const IntFormat& f, UnpackFn unpack, const uint8_t* row0, size_t row_bytes, int valid,
                     int64_t u, uint8_t* out);

}  // namespace onecard::cpu::avx2
