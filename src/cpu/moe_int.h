// The MoE phases for integer weight formats (internal to moe.cpp).
#pragma once

#include "cpu/int_format.h"
#include "cpu/kernels.h"
#include "cpu/moe.h"

namespace onecard::cpu {

// Fills s.out[i] (i-th pair in expert order, s.order) with expert(x[token of pair i]); s.counts, s.offsets,
// s.order and s.active are already set.
void moe_experts_int(const IntFormat& gate_f, const IntFormat& down_f, const ExpertWeights& w, const float* x,
                     int64_t n_tokens, int k, ThreadPool& pool, MoeScratch& s, const KernelTable& kt);

}  // namespace onecard::cpu
