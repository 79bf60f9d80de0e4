// window_scan: see window_scan.h.
#include "kernels/window_scan.h"

#include <cstring>

#include "kernels/convert.h"
#include "kernels/simd.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define AMALGAM_WINDOW_AVX512 1
#endif

namespace amalgam {
namespace {

inline uint32_t delta_key(float x, float b) {
  const float d = x - b;
  uint32_t u;
  std::memcpy(&u, &d, 4);
  return u & 0x7fffffffu;
}

inline void count_inside(uint64_t* hist, uint32_t lo_bin, uint32_t k) {
  hist[(k >> 16) - lo_bin] += 1 + (static_cast<uint64_t>((k & 0xffffu) != 0) << 32);
}

template <class KeyAt>
inline void scan_portable(size_t n, KeyWindow w, uint64_t* hist, uint64_t* above, KeyAt key_at) {
  const uint32_t lo = w.lo_bin << 16, hi = (w.hi_bin << 16) | 0xffffu, span = hi - lo;
  uint64_t up = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t k = key_at(i);
    up += k > hi;
    if (k - lo <= span) count_inside(hist, w.lo_bin, k);  // unsigned: lo <= k <= hi
  }
  *above += up;
}

#ifdef AMALGAM_WINDOW_AVX512
// GCC 12's avx512fintrin.h builds results from _mm512_undefined_*() and warns about
// itself when inlined (a known false positive; see also bracket_scan.cc).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
enum ScanInput { kKeys, kDeltaF32, kDeltaBf16 };

__attribute__((target("avx512f"))) inline __m512 widen_bf16(const uint16_t* p) {
  return _mm512_castsi512_ps(
      _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
}

// 16 keys a step: keys above counted per lane; the keys inside compressed in a register
// and stored whole to a stack buffer every step (no branch on whether there are any:
// about one step in three has some, which mispredicts), histogrammed when it fills.
template <ScanInput kIn>
__attribute__((target("avx512f"))) void scan_avx512(const void* a, const void* b, size_t n, KeyWindow w,
                                                    uint64_t* hist, uint64_t* above_out) {
  const uint32_t lo = w.lo_bin << 16, hi = (w.hi_bin << 16) | 0xffffu;
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
  const __m512i vlo = _mm512_set1_epi32(static_cast<int>(lo));
  const __m512i vhi = _mm512_set1_epi32(static_cast<int>(hi));
  const __m512i vspan = _mm512_set1_epi32(static_cast<int>(hi - lo));
  const __m512i one = _mm512_set1_epi32(1);
  constexpr size_t kBuf = 1024;
  alignas(64) uint32_t buf[kBuf + 16];
  size_t held = 0, i = 0;
  __m512i above = _mm512_setzero_si512();  // per lane: n / 16 < 2^32 for n < 2^36
  auto flush = [&] {
    for (size_t t = 0; t < held; ++t) count_inside(hist, w.lo_bin, buf[t]);
    held = 0;
  };
  for (; i + 16 <= n; i += 16) {
    __m512i k;
    if constexpr (kIn == kDeltaF32) {
      const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(static_cast<const float*>(a) + i),
                                     _mm512_loadu_ps(static_cast<const float*>(b) + i));
      k = _mm512_and_si512(_mm512_castps_si512(d), abs_mask);
    } else if constexpr (kIn == kDeltaBf16) {
      const __m512 d = _mm512_sub_ps(widen_bf16(static_cast<const uint16_t*>(a) + i),
                                     widen_bf16(static_cast<const uint16_t*>(b) + i));
      k = _mm512_and_si512(_mm512_castps_si512(d), abs_mask);
    } else {
      k = _mm512_loadu_si512(static_cast<const uint32_t*>(a) + i);
    }
    above = _mm512_mask_add_epi32(above, _mm512_cmpgt_epu32_mask(k, vhi), above, one);
    const __mmask16 in = _mm512_cmple_epu32_mask(_mm512_sub_epi32(k, vlo), vspan);
    _mm512_storeu_si512(buf + held, _mm512_maskz_compress_epi32(in, k));
    held += static_cast<size_t>(__builtin_popcount(in));
    if (held > kBuf - 16) flush();
  }
  flush();
  *above_out += static_cast<uint32_t>(_mm512_reduce_add_epi32(above));
  if constexpr (kIn == kDeltaF32) {
    const float* x = static_cast<const float*>(a) + i;
    const float* bb = static_cast<const float*>(b) + i;
    scan_portable(n - i, w, hist, above_out, [x, bb](size_t t) { return delta_key(x[t], bb[t]); });
  } else if constexpr (kIn == kDeltaBf16) {
    const uint16_t* x = static_cast<const uint16_t*>(a) + i;
    const uint16_t* bb = static_cast<const uint16_t*>(b) + i;
    scan_portable(n - i, w, hist, above_out,
                  [x, bb](size_t t) { return delta_key(load_bf16(x[t]), load_bf16(bb[t])); });
  } else {
    const uint32_t* keys = static_cast<const uint32_t*>(a) + i;
    scan_portable(n - i, w, hist, above_out, [keys](size_t t) { return keys[t]; });
  }
}
#pragma GCC diagnostic pop
#endif

}  // namespace

void window_scan_keys_portable(const uint32_t* keys, size_t n, KeyWindow w, uint64_t* hist, uint64_t* above) {
  scan_portable(n, w, hist, above, [keys](size_t i) { return keys[i]; });
}

void window_scan_delta_portable(const uint16_t* x, const uint16_t* b, size_t n, KeyWindow w, uint64_t* hist,
                                uint64_t* above) {
  scan_portable(n, w, hist, above, [x, b](size_t i) { return delta_key(load_bf16(x[i]), load_bf16(b[i])); });
}

void window_scan_keys(const uint32_t* keys, size_t n, KeyWindow w, uint64_t* hist, uint64_t* above) {
#ifdef AMALGAM_WINDOW_AVX512
  if (cpu_has_avx512f()) return scan_avx512<kKeys>(keys, nullptr, n, w, hist, above);
#endif
  window_scan_keys_portable(keys, n, w, hist, above);
}

void window_scan_delta(const float* x, const float* b, size_t n, KeyWindow w, uint64_t* hist, uint64_t* above) {
#ifdef AMALGAM_WINDOW_AVX512
  if (cpu_has_avx512f()) return scan_avx512<kDeltaF32>(x, b, n, w, hist, above);
#endif
  scan_portable(n, w, hist, above, [x, b](size_t i) { return delta_key(x[i], b[i]); });
}

void window_scan_delta(const uint16_t* x, const uint16_t* b, size_t n, KeyWindow w, uint64_t* hist,
                       uint64_t* above) {
#ifdef AMALGAM_WINDOW_AVX512
  if (cpu_has_avx512f()) return scan_avx512<kDeltaBf16>(x, b, n, w, hist, above);
#endif
  window_scan_delta_portable(x, b, n, w, hist, above);
}

}  // namespace amalgam
