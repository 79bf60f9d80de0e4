// Shared by the hand-written AVX-512 kernels (bracket_scan, window_scan, reduce): 16 f32
// lanes loaded from f32 or widened from bf16 bits, and the magnitude keys (abs_key of
// kernels/radix_select.h) of 16 deltas x - b or 16 given keys; plus the scalar key of one
// element for the kernels' tails. Include only where AMALGAM_AVX512_KEYS is defined.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/convert.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define AMALGAM_AVX512_KEYS 1
#endif

namespace amalgam::keys {

// Where a kernel's keys come from: given (kKeys, uint32_t), or abs_key of x - b from f32
// (kDeltaF32) or from bf16 bits (kDeltaBf16).
enum Input { kKeys, kDeltaF32, kDeltaBf16 };

inline uint32_t delta_key(float x, float b) {
  const float d = x - b;
  uint32_t u;
  std::memcpy(&u, &d, 4);
  return u & 0x7fffffffu;
}

// The key of element i of a kernel's input (a: keys or x; b: the base, unused for keys).
template <Input kIn>
inline uint32_t key_at(const void* a, const void* b, size_t i) {
  if constexpr (kIn == kDeltaF32)
    return delta_key(static_cast<const float*>(a)[i], static_cast<const float*>(b)[i]);
  else if constexpr (kIn == kDeltaBf16)
    return delta_key(load_bf16(static_cast<const uint16_t*>(a)[i]), load_bf16(static_cast<const uint16_t*>(b)[i]));
  else
    return static_cast<const uint32_t*>(a)[i];
}

#ifdef AMALGAM_AVX512_KEYS
// GCC 12's avx512fintrin.h builds results from _mm512_undefined_*() and warns about
// itself when inlined (a known false positive; see also philox.cc).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f"))) inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
__attribute__((target("avx512f"))) inline __m512 load16(const uint16_t* p) {
  return _mm512_castsi512_ps(
      _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
}

// The keys of elements i .. i + 15.
template <Input kIn>
__attribute__((target("avx512f"))) inline __m512i keys16(const void* a, const void* b, size_t i) {
  if constexpr (kIn == kKeys) {
    return _mm512_loadu_si512(static_cast<const uint32_t*>(a) + i);
  } else {
    using X = std::conditional_t<kIn == kDeltaF32, float, uint16_t>;
    const __m512 d = _mm512_sub_ps(load16(static_cast<const X*>(a) + i), load16(static_cast<const X*>(b) + i));
    return _mm512_and_si512(_mm512_castps_si512(d), _mm512_set1_epi32(0x7fffffff));
  }
}
#pragma GCC diagnostic pop
#endif

}  // namespace amalgam::keys
