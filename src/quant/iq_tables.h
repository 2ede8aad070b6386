// Lookup tables of the IQ formats. The grids are expanded to the layout SIMD kernels load directly: entry i,
// coordinate j is byte j (little-endian) of the word; IQ1_S coordinates are int8 (-1, 0, 1).
#pragma once

#include <array>
#include <cstdint>

namespace onecard::quant {

extern const std::array<uint64_t, 256> kIq2xxsGrid;  // coordinates in {8, 25, 43}
extern const std::array<uint64_t, 512> kIq2xsGrid;   // coordinates in {8, 25, 43}
extern const std::array<uint64_t, 1024> kIq2sGrid;   // coordinates in {8, 25, 43}
extern const std::array<uint32_t, 256> kIq3xxsGrid;  // coordinates in {4, 12, ..., 52, 62}
extern const std::array<uint32_t, 512> kIq3sGrid;    // coordinates in {1, 3, ..., 15}
extern const std::array<uint64_t, 2048> kIq1sGrid;   // int8 coordinates in {-1, 0, 1}

// The IQ2/IQ3 formats store 7 sign bits per 8 values; the eighth makes the count of negatives even.
extern const std::array<uint8_t, 128> kIqSigns;

// Non-uniform 4-bit levels of IQ4_NL and IQ4_XS.
inline constexpr std::array<int8_t, 16> kIq4nlValues = {-127, -104, -83, -65, -49, -35, -22, -10,
                                                        1,    13,   25,  38,  53,  69,  89,  113};

// The shift IQ1_S and IQ1_M add to every grid value (with the sign stored per group).
inline constexpr float kIq1Delta = 0.125f;

}  // namespace onecard::quant
