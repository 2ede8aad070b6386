// The batched int8 product for AVX-512 VNNI (prefill and the MoE experts of a batch). Tokens lie in the 16
// int32 lanes of a register, weight rows are unpacked once per task to signed 8-bit levels and broadcast,
// so one vpdpbusd advances one row for 15 tokens by 4 columns. The 16th lane holds a token of zeros: its
// result is the bias that the unsigned (+128) activations add to every lane, subtracted once per block.
// Weights stay in their file layout; a task unpacks its rows into a small per-thread buffer, which costs
// a fraction of a byte-operation per weight and is shared by all the tokens of the batch.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cpu/int_format.h"
#include "cpu/matrix.h"

namespace onecard::cpu {

inline constexpr int kPanelTokens = 15;  // real tokens per panel; lane 15 is the zero token
inline constexpr int kGemmRows = 8;      // rows the kernel advances together

// A panel: up to kPanelTokens quantized activation rows (format f.act, n columns) packed for the kernel.
size_t panel_bytes(const IntFormat& f, int64_t n);
void pack_panel(const IntFormat& f, int64_t n, const uint8_t* const* acts, int nt, uint8_t* panel);

// Rows [r0, r0 + nr) of w unpacked for the kernel into buf (unpacked_bytes(f, n, nr) bytes): the signed
// levels row after row (n bytes each), then per group of kGemmRows rows the scales [n / sub][kGemmRows]
// and, for affine formats, the offsets in the same layout. Interleaving the floats of a group lets the
// kernel reach them all from one register.
size_t unpacked_bytes(const IntFormat& f, int64_t n, int64_t nr);
void unpack_rows(const IntFormat& f, const Matrix& w, int64_t r0, int64_t nr, uint8_t* buf);

// Where unpack_rows puts row r's levels, and its scale and offset of sub-block 0 (sub-block b is
// kGemmRows floats further).
struct UnpackedRow {
  int8_t* levels;
  float* s;
  float* m;
};
UnpackedRow unpacked_row(const IntFormat& f, int64_t n, int64_t nr, uint8_t* buf, int64_t r);
// The vectorized unpacking of Q4_K, Q6_K and Q8_0 that unpack_rows uses; false for other formats.
bool unpack_rows_avx512(const IntFormat& f, const Matrix& w, int64_t r0, int64_t nr, uint8_t* buf);

// y[t * ldy + r] = row r of the unpacked rows times token t of the panel, for r < nr, t < nt. While it
// computes, the kernel asks for the prefetch_bytes at `prefetch` (the weights the caller unpacks next), so
// that memory streams under the arithmetic instead of before it.
void gemm_panel(const IntFormat& f, int64_t n, const uint8_t* rows, int64_t nr, const uint8_t* panel, int nt,
                float* y, int64_t ldy, const uint8_t* prefetch = nullptr, size_t prefetch_bytes = 0);

}  // namespace onecard::cpu
