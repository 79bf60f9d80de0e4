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

// from_f32(BF16, ...) and !any_nonfinite(src, n) in one sweep: rounds src into dst and
// returns true when every src value is finite (the bf16 merge path, methods/method.h).
bool f32_to_bf16_finite(const float* src, uint16_t* dst, size_t n);

// The f32 value of bf16 bits, inline for kernels that read bf16 inputs directly.
inline float load_bf16(uint16_t h) { return __builtin_bit_cast(float, static_cast<uint32_t>(h) << 16); }
inline float load_bf16(float x) { return x; }  // lets one kernel body read either form

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
