// bracket_scan: see bracket_scan.h.
#include "kernels/bracket_scan.h"

#include "kernels/avx512_keys.h"
#include "kernels/simd.h"

namespace amalgam {
namespace {
using keys::delta_key;
using keys::Input;

// Every element is written at out[kept]; only candidates advance kept (no branch).
template <class KeyAt>
inline size_t scan_portable(size_t n, const Bracket& br, uint64_t first_index, uint64_t* out,
                            BracketCounts* counts, KeyAt key_at) {
  const uint32_t lo = br.lo, hi = br.hi, eq_bin = br.eq_bin, span = hi - lo;
  size_t kept = 0;
  uint64_t up = 0;
  uint64_t eq[kBracketBins] = {}, frac[kBracketBins] = {};
  for (size_t i = 0; i < n; ++i) {
    const uint32_t k = key_at(i);
    up += k > hi;
    const bool in = k - lo <= span;  // unsigned: lo <= k <= hi
    const uint32_t o = (k >> 16) - eq_bin;
    const uint32_t j = br.slot[o & (kBracketWindow - 1)];
    const bool counted = in && o < kBracketWindow && j < kBracketBins;
    const bool round = (k & 0xffffu) == 0;
    eq[j & (kBracketBins - 1)] += counted && round;
    frac[j & (kBracketBins - 1)] += counted && !round;
    out[kept] = (static_cast<uint64_t>(0x7fffffffu - k) << 32) | (first_index + i);
    kept += in && !counted;
  }
  counts->above += up;
  for (uint32_t j = 0; j < kBracketBins; ++j) {
    counts->equal[j] += eq[j];
    counts->frac[j] += frac[j];
  }
  return kept;
}

#ifdef AMALGAM_AVX512_KEYS
// GCC 12's avx512fintrin.h builds results from _mm512_undefined_*() and warns about
// itself when inlined (a known false positive; see also philox.cc).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// Four 8-bit fields per 32-bit lane: bins 0-3 of the counted ones in `fields`, 4-7 in
// `fields_hi`.
static_assert(kBracketBins == 8);
__attribute__((target("avx512f"))) inline void flush_fields(__m512i& fields, uint64_t* eq) {
  for (uint32_t j = 0; j < 4; ++j) {
    const __m512i f = _mm512_and_si512(_mm512_srli_epi32(fields, 8 * j), _mm512_set1_epi32(0xff));
    eq[j] += static_cast<uint32_t>(_mm512_reduce_add_epi32(f));
  }
  fields = _mm512_setzero_si512();
}

// 16 keys a step. Keys above are counted per lane; counted keys in 8-bit fields of 32-bit
// lanes, field j for the bin of slot j (at most 64 per lane between flushes, every 1024
// keys); candidates are compressed in registers into 64-bit (key, index) words, the even
// pairs of each 128-bit lane from unpacklo and the odd pairs from unpackhi, and stored
// whole (a compress-store to memory is slow on Zen 4). Keys: given (kKeys), or abs_key of
// x - b from f32 (kDeltaF32) or bf16 bits (kDeltaBf16, widened in registers).
template <Input kIn>
__attribute__((target("avx512f"))) size_t scan_avx512(const void* a, const void* b, size_t n, const Bracket& br,
                                                      uint64_t first_index, uint64_t* out, BracketCounts* counts) {
  const uint32_t lo = br.lo, hi = br.hi, eq_bin = br.eq_bin;
  const bool dense = br.dense;
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
  const __m512i low_mask = _mm512_set1_epi32(0xffff);
  const __m512i vlo = _mm512_set1_epi32(static_cast<int>(lo));
  const __m512i vhi = _mm512_set1_epi32(static_cast<int>(hi));
  const __m512i vspan = _mm512_set1_epi32(static_cast<int>(hi - lo));
  const __m512i veq_bin = _mm512_set1_epi32(static_cast<int>(eq_bin));
  const __m512i vbins = _mm512_set1_epi32(static_cast<int>(kBracketBins));
  const __m512i vwindow = _mm512_set1_epi32(static_cast<int>(kBracketWindow));
  const __m512i slots_lo = _mm512_loadu_si512(br.slot), slots_hi = _mm512_loadu_si512(br.slot + 16);
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  size_t kept = 0, i = 0;
  uint64_t eq[kBracketBins] = {}, fr[kBracketBins] = {};
  __m512i fields = _mm512_setzero_si512(), fields_hi = _mm512_setzero_si512();
  __m512i ffields = _mm512_setzero_si512(), ffields_hi = _mm512_setzero_si512();  // keys with low bits
  __m512i above = _mm512_setzero_si512();  // per lane: n / 16 < 2^27
  for (; i + 16 <= n; i += 16) {
    const __m512i k = keys::keys16<kIn>(a, b, i);
    above = _mm512_mask_add_epi32(above, _mm512_cmpgt_epu32_mask(k, vhi), above, one);
    const __mmask16 in = _mm512_cmple_epu32_mask(_mm512_sub_epi32(k, vlo), vspan);
    const __mmask16 frac = _mm512_test_epi32_mask(k, low_mask);  // low bits set
    const __m512i o = _mm512_sub_epi32(_mm512_srli_epi32(k, 16), veq_bin);
    const __m512i j = _mm512_permutex2var_epi32(slots_lo, o, slots_hi);  // slot of bin o (o % 32)
    const __mmask16 counted = in & _mm512_cmplt_epu32_mask(o, vwindow) & _mm512_cmplt_epu32_mask(j, vbins);
    const __mmask16 round = counted & static_cast<__mmask16>(~frac), fracs = counted & frac;
    // sllv by 32 or more gives 0: bins 4-7 add nothing to `fields`, bins 0-3 nothing to
    // `fields_hi` (j - 4 wraps to a huge count).
    const __m512i shift = _mm512_slli_epi32(j, 3);
    const __m512i bit = _mm512_sllv_epi32(one, shift);
    const __m512i bit_hi = _mm512_sllv_epi32(one, _mm512_sub_epi32(shift, _mm512_set1_epi32(32)));
    fields = _mm512_mask_add_epi32(fields, round, fields, bit);
    fields_hi = _mm512_mask_add_epi32(fields_hi, round, fields_hi, bit_hi);
    ffields = _mm512_mask_add_epi32(ffields, fracs, ffields, bit);
    ffields_hi = _mm512_mask_add_epi32(ffields_hi, fracs, ffields_hi, bit_hi);
    if ((i & 1023) == 1008) {
      flush_fields(fields, eq);
      flush_fields(fields_hi, eq + 4);
      flush_fields(ffields, fr);
      flush_fields(ffields_hi, fr + 4);
    }
    const unsigned m = in & static_cast<__mmask16>(~counted);
    if (!dense && m == 0) continue;  // usual for bf16-sourced keys: mostly counted
    const __m512i inv = _mm512_sub_epi32(abs_mask, k);
    // Indices < 2^32 (radix_select.h), so 32-bit lanes hold them.
    const __m512i idx = _mm512_add_epi32(iota, _mm512_set1_epi32(static_cast<int>(first_index + i)));
    const __mmask8 m_even = static_cast<__mmask8>((m & 0x3u) | ((m >> 2) & 0xcu) | ((m >> 4) & 0x30u) | ((m >> 6) & 0xc0u));
    const __mmask8 m_odd =
        static_cast<__mmask8>(((m >> 2) & 0x3u) | ((m >> 4) & 0xcu) | ((m >> 6) & 0x30u) | ((m >> 8) & 0xc0u));
    _mm512_storeu_si512(out + kept, _mm512_maskz_compress_epi64(m_even, _mm512_unpacklo_epi32(idx, inv)));
    kept += static_cast<size_t>(__builtin_popcount(m_even));
    _mm512_storeu_si512(out + kept, _mm512_maskz_compress_epi64(m_odd, _mm512_unpackhi_epi32(idx, inv)));
    kept += static_cast<size_t>(__builtin_popcount(m_odd));
  }
  flush_fields(fields, eq);
  flush_fields(fields_hi, eq + 4);
  flush_fields(ffields, fr);
  flush_fields(ffields_hi, fr + 4);
  counts->above += static_cast<uint32_t>(_mm512_reduce_add_epi32(above));
  for (uint32_t j = 0; j < kBracketBins; ++j) {
    counts->equal[j] += eq[j];
    counts->frac[j] += fr[j];
  }
  const size_t tail = scan_portable(n - i, br, first_index + i, out + kept, counts,
                                    [a, b, i](size_t t) { return keys::key_at<kIn>(a, b, i + t); });
  return kept + tail;
}
#pragma GCC diagnostic pop

#endif

}  // namespace

size_t bracket_scan_keys_portable(const uint32_t* keys, size_t n, const Bracket& br,
                                  uint64_t first_index, uint64_t* out, BracketCounts* counts) {
  return scan_portable(n, br, first_index, out, counts, [keys](size_t i) { return keys[i]; });
}

size_t bracket_scan_delta_portable(const float* x, const float* b, size_t n, const Bracket& br, uint64_t first_index, uint64_t* out, BracketCounts* counts) {
  return scan_portable(n, br, first_index, out, counts,
                       [x, b](size_t i) { return delta_key(x[i], b[i]); });
}

size_t bracket_scan_keys(const uint32_t* keys, size_t n, const Bracket& br,
                         uint64_t first_index, uint64_t* out, BracketCounts* counts) {
#ifdef AMALGAM_AVX512_KEYS
  if (cpu_has_avx512f()) return scan_avx512<keys::kKeys>(keys, nullptr, n, br, first_index, out, counts);
#endif
  return bracket_scan_keys_portable(keys, n, br, first_index, out, counts);
}

size_t bracket_scan_delta(const float* x, const float* b, size_t n, const Bracket& br,
                          uint64_t first_index, uint64_t* out, BracketCounts* counts) {
#ifdef AMALGAM_AVX512_KEYS
  if (cpu_has_avx512f()) return scan_avx512<keys::kDeltaF32>(x, b, n, br, first_index, out, counts);
#endif
  return bracket_scan_delta_portable(x, b, n, br, first_index, out, counts);
}

size_t bracket_scan_delta_portable(const uint16_t* x, const uint16_t* b, size_t n, const Bracket& br,
                                   uint64_t first_index, uint64_t* out, BracketCounts* counts) {
  return scan_portable(n, br, first_index, out, counts,
                       [x, b](size_t i) { return delta_key(load_bf16(x[i]), load_bf16(b[i])); });
}

size_t bracket_scan_delta(const uint16_t* x, const uint16_t* b, size_t n, const Bracket& br,
                          uint64_t first_index, uint64_t* out, BracketCounts* counts) {
#ifdef AMALGAM_AVX512_KEYS
  if (cpu_has_avx512f()) return scan_avx512<keys::kDeltaBf16>(x, b, n, br, first_index, out, counts);
#endif
  return bracket_scan_delta_portable(x, b, n, br, first_index, out, counts);
}

}  // namespace amalgam
