#include "quant/dequantize.h"

#include <cstring>

#include "base/half.h"
#include "quant/iq_tables.h"

namespace onecard::quant {
namespace {

uint8_t grid_byte(uint64_t word, int j) {
  return static_cast<uint8_t>(word >> (8 * j));
}
float sign_of(uint8_t signs, int j) {
  return (signs >> j) & 1 ? -1.0f : 1.0f;
}

// Eight values of an IQ2-style group: a grid row times a scale, with signs from a sign byte.
void put_grid8(uint64_t row, uint8_t signs, float scale, float* y) {
  for (int j = 0; j < 8; ++j) y[j] = scale * static_cast<float>(grid_byte(row, j)) * sign_of(signs, j);
}

// Eight values of IQ1_S/IQ1_M: int8 grid coordinates plus the shift, times the scale.
void put_iq1_8(uint64_t row, float delta, float scale, float* y) {
  for (int j = 0; j < 8; ++j) {
    const auto g = static_cast<int8_t>(grid_byte(row, j));
    y[j] = scale * (static_cast<float>(g) + delta);
  }
}

}  // namespace

void dequantize_f32(const float* x, float* y, int64_t n) {
  std::memmove(y, x, static_cast<size_t>(n) * sizeof(float));
}

void dequantize_f16(const uint16_t* x, float* y, int64_t n) {
  const auto* p = reinterpret_cast<const uint8_t*>(x);
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    y[i] = fp16_to_fp32(h);
  }
}

void dequantize_bf16(const uint16_t* x, float* y, int64_t n) {
  const auto* p = reinterpret_cast<const uint8_t*>(x);
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    y[i] = bf16_to_fp32(h);
  }
}

void dequantize_q4_0(const BlockQ4_0* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, y += kQK) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = d * static_cast<float>((x[b].qs[j] & 0xf) - 8);
      y[j + kQK / 2] = d * static_cast<float>((x[b].qs[j] >> 4) - 8);
    }
  }
}

void dequantize_q4_1(const BlockQ4_1* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, y += kQK) {
    const float d = fp16_to_fp32(x[b].d);
    const float m = fp16_to_fp32(x[b].m);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = d * static_cast<float>(x[b].qs[j] & 0xf) + m;
      y[j + kQK / 2] = d * static_cast<float>(x[b].qs[j] >> 4) + m;
    }
  }
}

void dequantize_q5_0(const BlockQ5_0* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, y += kQK) {
    const float d = fp16_to_fp32(x[b].d);
    const uint32_t qh = load_u32(x[b].qh);
    for (int j = 0; j < kQK / 2; ++j) {
      const int lo = (x[b].qs[j] & 0xf) | static_cast<int>(((qh >> j) & 1) << 4);
      const int hi = (x[b].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
      y[j] = d * static_cast<float>(lo - 16);
      y[j + kQK / 2] = d * static_cast<float>(hi - 16);
    }
  }
}

void dequantize_q5_1(const BlockQ5_1* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, y += kQK) {
    const float d = fp16_to_fp32(x[b].d);
    const float m = fp16_to_fp32(x[b].m);
    const uint32_t qh = load_u32(x[b].qh);
    for (int j = 0; j < kQK / 2; ++j) {
      const int lo = (x[b].qs[j] & 0xf) | static_cast<int>(((qh >> j) & 1) << 4);
      const int hi = (x[b].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
      y[j] = d * static_cast<float>(lo) + m;
      y[j + kQK / 2] = d * static_cast<float>(hi) + m;
    }
  }
}

void dequantize_q8_0(const BlockQ8_0* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, y += kQK) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kQK; ++j) y[j] = d * static_cast<float>(x[b].qs[j]);
  }
}

void dequantize_q8_1(const BlockQ8_1* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, y += kQK) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kQK; ++j) y[j] = d * static_cast<float>(x[b].qs[j]);
  }
}

void dequantize_q2_k(const BlockQ2_K* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b, y += kQK_K) {
    const BlockQ2_K& blk = x[b];
    const float d = fp16_to_fp32(blk.d);
    const float dmin = fp16_to_fp32(blk.dmin);
    for (int e = 0; e < kQK_K; ++e) {
      const uint8_t sc = blk.scales[e / 16];
      const int q = (blk.qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
      y[e] = d * static_cast<float>(sc & 0xf) * static_cast<float>(q) - dmin * static_cast<float>(sc >> 4);
    }
  }
}

void dequantize_q3_k(const BlockQ3_K* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b, y += kQK_K) {
    const BlockQ3_K& blk = x[b];
    const float d = fp16_to_fp32(blk.d);
    float dl[16];
    for (int k = 0; k < 16; ++k) dl[k] = d * static_cast<float>(q3k_scale(k, blk.scales) - 32);
    for (int e = 0; e < kQK_K; ++e) {
      const int low = (blk.qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
      const int high = (blk.hmask[e % 32] >> (e / 32)) & 1;
      y[e] = dl[e / 16] * static_cast<float>(low - (high ? 0 : 4));
    }
  }
}

void dequantize_q4_k(const BlockQ4_K* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b, y += kQK_K) {
    const BlockQ4_K& blk = x[b];
    const float d = fp16_to_fp32(blk.d);
    const float dmin = fp16_to_fp32(blk.dmin);
    for (int k = 0; k < 8; ++k) {
      uint8_t sc, m;
      k_scale_min(k, blk.scales, &sc, &m);
      const float dl = d * static_cast<float>(sc);
      const float ml = dmin * static_cast<float>(m);
      const uint8_t* q = blk.qs + 32 * (k / 2);
      const int shift = 4 * (k % 2);
      for (int l = 0; l < 32; ++l) y[32 * k + l] = dl * static_cast<float>((q[l] >> shift) & 0xf) - ml;
    }
  }
}

void dequantize_q5_k(const BlockQ5_K* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b, y += kQK_K) {
    const BlockQ5_K& blk = x[b];
    const float d = fp16_to_fp32(blk.d);
    const float dmin = fp16_to_fp32(blk.dmin);
    for (int k = 0; k < 8; ++k) {
      uint8_t sc, m;
      k_scale_min(k, blk.scales, &sc, &m);
      const float dl = d * static_cast<float>(sc);
      const float ml = dmin * static_cast<float>(m);
      const uint8_t* q = blk.qs + 32 * (k / 2);
      const int shift = 4 * (k % 2);
      for (int l = 0; l < 32; ++l) {
        const int v = ((q[l] >> shift) & 0xf) | (((blk.qh[l] >> k) & 1) << 4);
        y[32 * k + l] = dl * static_cast<float>(v) - ml;
      }
    }
  }
}

void dequantize_q6_k(const BlockQ6_K* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b, y += kQK_K) {
    const BlockQ6_K& blk = x[b];
    const float d = fp16_to_fp32(blk.d);
    for (int e = 0; e < kQK_K; ++e) {
      const int h = e / 128, i = (e % 128) / 32, l = e % 32;
      const int low = (blk.ql[64 * h + 32 * (i & 1) + l] >> (4 * (i >> 1))) & 0xf;
      const int high = (blk.qh[32 * h + l] >> (2 * i)) & 3;
      y[e] = d * static_cast<float>(blk.scales[e / 16]) * static_cast<float>((low | (high << 4)) - 32);
    }
  }
}

void dequantize_q8_k(const BlockQ8_K* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b, y += kQK_K) {
    const float d = x[b].d;
    for (int j = 0; j < kQK_K; ++j) y[j] = d * static_cast<float>(x[b].qs[j]);
  }
}

void dequantize_iq2_xxs(const BlockIQ2_XXS* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const BlockIQ2_XXS& blk = x[b];
    const float d = fp16_to_fp32(blk.d);
    for (int g = 0; g < kQK_K / 32; ++g) {
      const uint32_t idx = blk.qs[4 * g] | (static_cast<uint32_t>(blk.qs[4 * g + 1]) << 16);
      const uint32_t meta = blk.qs[4 * g + 2] | (static_cast<uint32_t>(blk.qs[4 * g + 3]) << 16);
      const float db = d * (0.5f + static_cast<float>(meta >> 28)) * 0.25f;
      for (int l = 0; l < 4; ++l, y += 8) {
        put_grid8(kIq2xxsGrid[(idx >> (8 * l)) & 0xff], kIqSigns[(meta >> (7 * l)) & 127], db, y);
      }
    }
  }
}

void dequantize_iq2_xs(const BlockIQ2_XS* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const BlockIQ2_XS& blk = x[b];
    const float d = fp16_to_fp32(blk.d);
    for (int g = 0; g < kQK_K / 32; ++g) {
      for (int l = 0; l < 4; ++l, y += 8) {
        const int s = (blk.scales[g] >> (4 * (l / 2))) & 0xf;
        const float db = d * (0.5f + static_cast<float>(s)) * 0.25f;
        const uint16_t code = blk.qs[4 * g + l];
        put_grid8(kIq2xsGrid[code & 511], kIqSigns[code >> 9], db, y);
      }
    }
  }
}

void dequantize_iq2_s(const BlockIQ2_S* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const BlockIQ2_S& blk = x[b];
    const float d = fp16_to_fp32(blk.d);
    const uint8_t* signs = blk.qs + kQK_K / 8;
    for (int g = 0; g < kQK_K / 32; ++g) {
      for (int l = 0; l < 4; ++l, y += 8) {
        const int s = (blk.scales[g] >> (4 * (l / 2))) & 0xf;
        const float db = d * (0.5f + static_cast<float>(s)) * 0.25f;
        const int index = blk.qs[4 * g + l] | (((blk.qh[g] >> (2 * l)) & 3) << 8);
        put_grid8(kIq2sGrid[index], signs[4 * g + l], db, y);
      }
    }
  }
}

void dequantize_iq3_xxs(const BlockIQ3_XXS* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const BlockIQ3_XXS& blk = x[b];
    const float d = fp16_to_fp32(blk.d);
    for (int g = 0; g < kQK_K / 32; ++g) {
      const uint32_t meta = load_u32(blk.qs + kQK_K / 4 + 4 * g);
      const float db = d * (0.5f + static_cast<float>(meta >> 28)) * 0.5f;
      for (int l = 0; l < 4; ++l, y += 8) {
        const uint64_t row = kIq3xxsGrid[blk.qs[8 * g + 2 * l]] |
                             (static_cast<uint64_t>(kIq3xxsGrid[blk.qs[8 * g + 2 * l + 1]]) << 32);
        put_grid8(row, kIqSigns[(meta >> (7 * l)) & 127], db, y);
      }
    }
  }
}

void dequantize_iq3_s(const BlockIQ3_S* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const BlockIQ3_S& blk = x[b];
    const float d = fp16_to_fp32(blk.d);
    for (int g = 0; g < kQK_K / 32; ++g) {
      const int s = (blk.scales[g / 2] >> (4 * (g % 2))) & 0xf;
      const float db = d * static_cast<float>(1 + 2 * s);
      for (int l = 0; l < 4; ++l, y += 8) {
        const int i0 = blk.qs[8 * g + 2 * l] | (((blk.qh[g] >> (2 * l)) & 1) << 8);
        const int i1 = blk.qs[8 * g + 2 * l + 1] | (((blk.qh[g] >> (2 * l + 1)) & 1) << 8);
        const uint64_t row = kIq3sGrid[i0] | (static_cast<uint64_t>(kIq3sGrid[i1]) << 32);
        put_grid8(row, blk.signs[4 * g + l], db, y);
      }
    }
  }
}

void dequantize_iq1_s(const BlockIQ1_S* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const BlockIQ1_S& blk = x[b];
    const float d = fp16_to_fp32(blk.d);
    for (int g = 0; g < kQK_K / 32; ++g) {
      const uint16_t qh = blk.qh[g];
      const float dl = d * static_cast<float>(2 * ((qh >> 12) & 7) + 1);
      const float delta = qh & 0x8000 ? -kIq1Delta : kIq1Delta;
      for (int l = 0; l < 4; ++l, y += 8) {
        const int index = blk.qs[4 * g + l] | (((qh >> (3 * l)) & 7) << 8);
        put_iq1_8(kIq1sGrid[index], delta, dl, y);
      }
    }
  }
}

void dequantize_iq1_m(const BlockIQ1_M* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const BlockIQ1_M& blk = x[b];
    uint16_t sc[4];
    std::memcpy(sc, blk.scales, sizeof(sc));
    const auto dbits = static_cast<uint16_t>((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) |
                                             ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
    const float d = fp16_to_fp32(dbits);
    for (int g = 0; g < kQK_K / 32; ++g) {
      for (int l = 0; l < 4; ++l, y += 8) {
        // Each qh byte serves two groups of 8: low nibble, then high nibble (3 index bits, 1 shift sign).
        const int nib = (blk.qh[2 * g + l / 2] >> (4 * (l % 2))) & 0xf;
        const int index = blk.qs[4 * g + l] | ((nib & 7) << 8);
        const float delta = nib & 8 ? -kIq1Delta : kIq1Delta;
        const int s = (sc[g / 2] >> (6 * (g % 2) + 3 * (l / 2))) & 7;
        put_iq1_8(kIq1sGrid[index], delta, d * static_cast<float>(2 * s + 1), y);
      }
    }
  }
}

void dequantize_iq4_nl(const BlockIQ4_NL* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, y += kQK) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = d * static_cast<float>(kIq4nlValues[x[b].qs[j] & 0xf]);
      y[j + kQK / 2] = d * static_cast<float>(kIq4nlValues[x[b].qs[j] >> 4]);
    }
  }
}

void dequantize_iq4_xs(const BlockIQ4_XS* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const BlockIQ4_XS& blk = x[b];
    const float d = fp16_to_fp32(blk.d);
    const uint16_t sh = blk.scales_h;
    for (int g = 0; g < kQK_K / 32; ++g, y += 32) {
      const int ls = ((blk.scales_l[g / 2] >> (4 * (g % 2))) & 0xf) | (((sh >> (2 * g)) & 3) << 4);
      const float dl = d * static_cast<float>(ls - 32);
      const uint8_t* q = blk.qs + 16 * g;
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * static_cast<float>(kIq4nlValues[q[j] & 0xf]);
        y[j + 16] = dl * static_cast<float>(kIq4nlValues[q[j] >> 4]);
      }
    }
  }
}

namespace {

template <class Block, void (*F)(const Block*, float*, int64_t)>
void erased(const void* src, float* dst, int64_t n) {
  F(static_cast<const Block*>(src), dst, n);
}

}  // namespace

DequantizeFn dequantize_fn(gguf::GgmlType type) {
  using gguf::GgmlType;
  switch (type) {
    case GgmlType::F32:
      return erased<float, dequantize_f32>;
    case GgmlType::F16:
      return erased<uint16_t, dequantize_f16>;
    case GgmlType::BF16:
      return erased<uint16_t, dequantize_bf16>;
    case GgmlType::Q4_0:
      return erased<BlockQ4_0, dequantize_q4_0>;
    case GgmlType::Q4_1:
      return erased<BlockQ4_1, dequantize_q4_1>;
    case GgmlType::Q5_0:
      return erased<BlockQ5_0, dequantize_q5_0>;
    case GgmlType::Q5_1:
      return erased<BlockQ5_1, dequantize_q5_1>;
    case GgmlType::Q8_0:
      return erased<BlockQ8_0, dequantize_q8_0>;
    case GgmlType::Q8_1:
      return erased<BlockQ8_1, dequantize_q8_1>;
    case GgmlType::Q2_K:
      return erased<BlockQ2_K, dequantize_q2_k>;
    case GgmlType::Q3_K:
      return erased<BlockQ3_K, dequantize_q3_k>;
    case GgmlType::Q4_K:
      return erased<BlockQ4_K, dequantize_q4_k>;
    case GgmlType::Q5_K:
      return erased<BlockQ5_K, dequantize_q5_k>;
    case GgmlType::Q6_K:
      return erased<BlockQ6_K, dequantize_q6_k>;
    case GgmlType::Q8_K:
      return erased<BlockQ8_K, dequantize_q8_k>;
    case GgmlType::IQ2_XXS:
      return erased<BlockIQ2_XXS, dequantize_iq2_xxs>;
    case GgmlType::IQ2_XS:
      return erased<BlockIQ2_XS, dequantize_iq2_xs>;
    case GgmlType::IQ2_S:
      return erased<BlockIQ2_S, dequantize_iq2_s>;
    case GgmlType::IQ3_XXS:
      return erased<BlockIQ3_XXS, dequantize_iq3_xxs>;
    case GgmlType::IQ3_S:
      return erased<BlockIQ3_S, dequantize_iq3_s>;
    case GgmlType::IQ1_S:
      return erased<BlockIQ1_S, dequantize_iq1_s>;
    case GgmlType::IQ1_M:
      return erased<BlockIQ1_M, dequantize_iq1_m>;
    case GgmlType::IQ4_NL:
      return erased<BlockIQ4_NL, dequantize_iq4_nl>;
    case GgmlType::IQ4_XS:
      return erased<BlockIQ4_XS, dequantize_iq4_xs>;
    default:
      return nullptr;
  }
}

Status check_row_length(gguf::GgmlType type, int64_t n) {
  const gguf::TypeTraits* tt = gguf::type_traits(static_cast<uint32_t>(type));
  if (tt == nullptr)
    return make_error("unknown ggml type id {} (row of {} elements)", static_cast<uint32_t>(type), n);
  if (n < 0 || n % tt->block_size != 0) {
    return make_error("{}: a row of {} elements is not a whole number of {}-element blocks", tt->name, n,
                      tt->block_size);
  }
  return {};
}

Status dequantize_row(gguf::GgmlType type, const void* src, float* dst, int64_t n) {
  ONECARD_TRY(check_row_length(type, n));
  const DequantizeFn f = dequantize_fn(type);
  if (f == nullptr) {
    return make_error("{}: no dequantizer for this type (row of {} elements)", gguf::type_name(type), n);
  }
  f(src, dst, n);
  return {};
}

}  // namespace onecard::quant
