// window_scan: see window_scan.h.
#include "kernels/window_scan.h"

#include "kernels/avx512_keys.h"
#include "kernels/simd.h"

namespace amalgam {
namespace {
using keys::Input;

inline void count_inside(uint64_t* hist, uint32_t lo_bin, uint32_t k) {
  hist[(k >> 16) - lo_bin] += 1 + (static_cast<uint64_t>((k & 0xffffu) != 0) << 32);
}

template <Input kIn>
inline void scan_portable(const void* a, const void* b, size_t n, KeyWindow w, uint64_t* hist, uint64_t* above) {
  const uint32_t lo = w.lo_bin << 16, hi = (w.hi_bin << 16) | 0xffffu, span = hi - lo;
  uint64_t up = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t k = keys::key_at<kIn>(a, b, i);
    up += k > hi;
    if (k - lo <= span) count_inside(hist, w.lo_bin, k);  // unsigned: lo <= k <= hi
  }
  *above += up;
}

#ifdef AMALGAM_AVX512_KEYS
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// 16 keys a step: keys above counted per lane; the keys inside compressed in a register
// and stored whole to a stack buffer every step (no branch on whether there are any:
// about one step in three has some, which mispredicts), histogrammed when it fills.
template <Input kIn>
__attribute__((target("avx512f"))) void scan_avx512(const void* a, const void* b, size_t n, KeyWindow w,
                                                    uint64_t* hist, uint64_t* above_out) {
  const uint32_t lo = w.lo_bin << 16, hi = (w.hi_bin << 16) | 0xffffu;
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
    const __m512i k = keys::keys16<kIn>(a, b, i);
    above = _mm512_mask_add_epi32(above, _mm512_cmpgt_epu32_mask(k, vhi), above, one);
    const __mmask16 in = _mm512_cmple_epu32_mask(_mm512_sub_epi32(k, vlo), vspan);
    _mm512_storeu_si512(buf + held, _mm512_maskz_compress_epi32(in, k));
    held += static_cast<size_t>(__builtin_popcount(in));
    if (held > kBuf - 16) flush();
  }
  flush();
  *above_out += static_cast<uint32_t>(_mm512_reduce_add_epi32(above));
  const size_t sz = kIn == keys::kDeltaBf16 ? 2 : 4;  // element bytes
  scan_portable<kIn>(static_cast<const char*>(a) + i * sz, b ? static_cast<const char*>(b) + i * sz : nullptr, n - i,
                     w, hist, above_out);
}
#pragma GCC diagnostic pop

template <Input kIn>
void scan(const void* a, const void* b, size_t n, KeyWindow w, uint64_t* hist, uint64_t* above) {
  if (cpu_has_avx512f()) return scan_avx512<kIn>(a, b, n, w, hist, above);
  scan_portable<kIn>(a, b, n, w, hist, above);
}
#else
template <Input kIn>
void scan(const void* a, const void* b, size_t n, KeyWindow w, uint64_t* hist, uint64_t* above) {
  scan_portable<kIn>(a, b, n, w, hist, above);
}
#endif

}  // namespace

void window_scan_keys_portable(const uint32_t* keys, size_t n, KeyWindow w, uint64_t* hist, uint64_t* above) {
  scan_portable<keys::kKeys>(keys, nullptr, n, w, hist, above);
}

void window_scan_delta_portable(const uint16_t* x, const uint16_t* b, size_t n, KeyWindow w, uint64_t* hist,
                                uint64_t* above) {
  scan_portable<keys::kDeltaBf16>(x, b, n, w, hist, above);
}

void window_scan_keys(const uint32_t* keys, size_t n, KeyWindow w, uint64_t* hist, uint64_t* above) {
  scan<keys::kKeys>(keys, nullptr, n, w, hist, above);
}

void window_scan_delta(const float* x, const float* b, size_t n, KeyWindow w, uint64_t* hist, uint64_t* above) {
  scan<keys::kDeltaF32>(x, b, n, w, hist, above);
}

void window_scan_delta(const uint16_t* x, const uint16_t* b, size_t n, KeyWindow w, uint64_t* hist,
                       uint64_t* above) {
  scan<keys::kDeltaBf16>(x, b, n, w, hist, above);
}

}  // namespace amalgam
