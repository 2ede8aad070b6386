// The batched int8 product for AVX-512 VNNI (prefill and the MoE experts of a batch). Tokens lie in the 16
// int32 lanes of a register, weight rows are unpacked once per task to their unsigned levels q and
// broadcast as the unsigned operand of vpdpbusd, the signed activations as they are the other, so one
// vpdpbusd advances one row for 16 tokens by 4 columns. The zero point z of the levels is removed exactly:
// each sub-block's integer sum starts from -z * (the token's activation sum), which the panel carries.
// Weights stay in their file layout; a task unpacks its rows into a small per-thread buffer, which costs
// a fraction of a byte-operation per weight and is shared by all the tokens of the batch.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cpu/int_format.h"
#include "cpu/matrix.h"

namespace onecard::cpu {

inline constexpr int kPanelTokens = 16;  // tokens per panel: one per int32 lane
inline constexpr int kGemmRows = 8;      // rows the kernel advances together

// A panel: up to kPanelTokens quantized activation rows (format f.act, n columns) packed for the kernel.
size_t panel_bytes(const IntFormat& f, int64_t n);
void pack_panel(const IntFormat& f, int64_t n, const uint8_t* const* acts, int nt, uint8_t* panel);

// Rows [r0, r0 + nr) of w unpacked for the kernel into buf (unpacked_bytes(f, n, nr) bytes): the unsigned
// levels row after row (n bytes each), then per row its scales [n / sub] followed, for affine formats, by
// its offsets [n / sub]. A row's floats lie together so that unpacking writes them with vector stores; the
// kernel broadcasts each one from memory, where their order costs nothing.
size_t unpacked_bytes(const IntFormat& f, int64_t n, int64_t nr);
void unpack_rows(const IntFormat& f, const Matrix& w, int64_t r0, int64_t nr, uint8_t* buf);

// Where unpack_rows puts row r's levels, and its scales and offsets (s[b], m[b] for sub-block b); row r + 1's
// floats follow at a distance of stride floats.
struct UnpackedRow {
  uint8_t* levels;
  float* s;
  float* m;
  int64_t stride;
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
