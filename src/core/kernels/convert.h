// Element conversion between stored dtypes and f32, the working type of every method.
// to_f32 is exact for every 8/16-bit float (incl. NaN payload class, Inf, subnormals);
// from_f32 rounds to nearest even and keeps NaN (quiet) and Inf. Vectorized with
// Highway where available; kernels never throw and never allocate.
#pragma once
#include <cstddef>
#include <cstdint>

#include "io/dtype.h"

namespace amalgam {

void to_f32(DType src_type, const void* src, float* dst, size_t n);
void from_f32(DType dst_type, const float* src, void* dst, size_t n);

// True when any of x[0, n) is Inf or NaN (a vectorized scan of the exponent bits).
bool any_nonfinite(const float* x, size_t n);

// Scalar helpers, used by tests and non-hot paths.
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float f8e4m3_to_f32(uint8_t b);
uint8_t f32_to_f8e4m3(float f);  // saturates to NaN past the finite range (e4m3fn has no Inf)
float f8e5m2_to_f32(uint8_t b);
uint8_t f32_to_f8e5m2(float f);

}  // namespace amalgam
