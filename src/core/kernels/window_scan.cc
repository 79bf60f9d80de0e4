// window_scan: see window_scan.h.
#include "kernels/window_scan.h"

#include <algorithm>
#include <vector>

#include "kernels/avx512_keys.h"
#include "kernels/simd.h"

namespace amalgam {
namespace {
using keys::Input;

// Arithmetic, not a comparison: GCC made `(k & 0xffff) != 0` a branch, which mispredicted
// on about half the keys inside (40% of breadcrumbs' window scans).
inline void count_inside(uint64_t* hist, uint32_t lo_bin, uint32_t k) {
  const uint64_t low_set = ((k & 0xffffu) + 0xffffu) >> 16;  // 1 iff any low bit is set
  hist[(k >> 16) - lo_bin] += 1 | (low_set << 32);
}

// The keys inside a window, histogrammed from a buffer. Runs of keys in one bin (a
// frequent bf16 delta held 60% of breadcrumbs' keep window) chain each increment on the
// previous one's store; on long scans four tables take alternate keys and are summed
// into the window's at the end.
class InsideCounts {
 public:
  // `slot`: which of the thread's table sets (a scan of two windows holds two at once).
  InsideCounts(const KeyWindow& w, uint64_t* hist, size_t keys, int slot)
      : lo_bin_(w.lo_bin), hist_(hist) {
    const size_t width = w.width();
    if (keys < 16 * width) return;  // short scans: clearing the tables would cost more
    thread_local std::vector<uint64_t> spares[2];
    std::vector<uint64_t>& spare = spares[slot];
    if (spare.size() < 3 * width) spare.resize(3 * width);
    std::fill(spare.begin(), spare.begin() + static_cast<std::ptrdiff_t>(3 * width), 0);
    width_ = width;
    tables_[0] = spare.data();
    tables_[1] = spare.data() + width;
    tables_[2] = spare.data() + 2 * width;
  }
  void add(const uint32_t* keys, size_t n) {
    size_t t = 0;
    if (width_) {
      for (; t + 4 <= n; t += 4) {
        count_inside(hist_, lo_bin_, keys[t]);
        count_inside(tables_[0], lo_bin_, keys[t + 1]);
        count_inside(tables_[1], lo_bin_, keys[t + 2]);
        count_inside(tables_[2], lo_bin_, keys[t + 3]);
      }
    }
    for (; t < n; ++t) count_inside(hist_, lo_bin_, keys[t]);
  }
  ~InsideCounts() {
    for (size_t i = 0; i < width_; ++i) hist_[i] += tables_[0][i] + tables_[1][i] + tables_[2][i];
  }

 private:
  uint32_t lo_bin_;
  uint64_t* hist_;
  size_t width_ = 0;
  uint64_t* tables_[3] = {};
};

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

template <Input kIn>
inline void scan2_portable(const void* a, const void* b, size_t n, const WindowTally& p, const WindowTally& q) {
  scan_portable<kIn>(a, b, n, p.w, p.hist, p.above);
  scan_portable<kIn>(a, b, n, q.w, q.hist, q.above);
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
  InsideCounts inside(w, hist, n, 0);
  auto flush = [&] {
    inside.add(buf, held);
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

// Both windows from one computation of the keys: the same counts as two scan_avx512s.
// (No lambdas around the vectors: GCC 12's ASan build miscompiled such lambdas in
// philox.cc.)
template <Input kIn>
__attribute__((target("avx512f"))) void scan2_avx512(const void* a, const void* b, size_t n, const WindowTally& p,
                                                     const WindowTally& q) {
  constexpr size_t kBuf = 1024;
  alignas(64) uint32_t buf_p[kBuf + 16], buf_q[kBuf + 16];
  size_t held_p = 0, held_q = 0;
  const uint32_t lo_p = p.w.lo_bin << 16, hi_p = (p.w.hi_bin << 16) | 0xffffu;
  const uint32_t lo_q = q.w.lo_bin << 16, hi_q = (q.w.hi_bin << 16) | 0xffffu;
  const __m512i vlo_p = _mm512_set1_epi32(static_cast<int>(lo_p)), vhi_p = _mm512_set1_epi32(static_cast<int>(hi_p));
  const __m512i vlo_q = _mm512_set1_epi32(static_cast<int>(lo_q)), vhi_q = _mm512_set1_epi32(static_cast<int>(hi_q));
  const __m512i vspan_p = _mm512_set1_epi32(static_cast<int>(hi_p - lo_p));
  const __m512i vspan_q = _mm512_set1_epi32(static_cast<int>(hi_q - lo_q));
  const __m512i one = _mm512_set1_epi32(1);
  __m512i above_p = _mm512_setzero_si512(), above_q = _mm512_setzero_si512();
  InsideCounts inside_p(p.w, p.hist, n, 0), inside_q(q.w, q.hist, n, 1);
  auto flush = [](uint32_t* buf, size_t& held, InsideCounts& inside) {
    inside.add(buf, held);
    held = 0;
  };
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i k = keys::keys16<kIn>(a, b, i);
    above_p = _mm512_mask_add_epi32(above_p, _mm512_cmpgt_epu32_mask(k, vhi_p), above_p, one);
    above_q = _mm512_mask_add_epi32(above_q, _mm512_cmpgt_epu32_mask(k, vhi_q), above_q, one);
    const __mmask16 in_p = _mm512_cmple_epu32_mask(_mm512_sub_epi32(k, vlo_p), vspan_p);
    const __mmask16 in_q = _mm512_cmple_epu32_mask(_mm512_sub_epi32(k, vlo_q), vspan_q);
    _mm512_storeu_si512(buf_p + held_p, _mm512_maskz_compress_epi32(in_p, k));
    _mm512_storeu_si512(buf_q + held_q, _mm512_maskz_compress_epi32(in_q, k));
    held_p += static_cast<size_t>(__builtin_popcount(in_p));
    held_q += static_cast<size_t>(__builtin_popcount(in_q));
    if (held_p > kBuf - 16) flush(buf_p, held_p, inside_p);
    if (held_q > kBuf - 16) flush(buf_q, held_q, inside_q);
  }
  flush(buf_p, held_p, inside_p);
  flush(buf_q, held_q, inside_q);
  *p.above += static_cast<uint32_t>(_mm512_reduce_add_epi32(above_p));
  *q.above += static_cast<uint32_t>(_mm512_reduce_add_epi32(above_q));
  const size_t sz = kIn == keys::kDeltaBf16 ? 2 : 4;  // element bytes
  scan2_portable<kIn>(static_cast<const char*>(a) + i * sz, static_cast<const char*>(b) + i * sz, n - i, p, q);
}
#pragma GCC diagnostic pop

template <Input kIn>
void scan2(const void* a, const void* b, size_t n, const WindowTally& p, const WindowTally& q) {
  if (cpu_has_avx512f()) return scan2_avx512<kIn>(a, b, n, p, q);
  scan2_portable<kIn>(a, b, n, p, q);
}

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
template <Input kIn>
void scan2(const void* a, const void* b, size_t n, const WindowTally& p, const WindowTally& q) {
  scan2_portable<kIn>(a, b, n, p, q);
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

void window_scan_delta2_portable(const uint16_t* x, const uint16_t* b, size_t n, const WindowTally& first,
                                 const WindowTally& second) {
  scan2_portable<keys::kDeltaBf16>(x, b, n, first, second);
}

void window_scan_delta2(const float* x, const float* b, size_t n, const WindowTally& first, const WindowTally& second) {
  scan2<keys::kDeltaF32>(x, b, n, first, second);
}

void window_scan_delta2(const uint16_t* x, const uint16_t* b, size_t n, const WindowTally& first,
                        const WindowTally& second) {
  scan2<keys::kDeltaBf16>(x, b, n, first, second);
}

}  // namespace amalgam
