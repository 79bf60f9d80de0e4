// Element-wise kernels of the task-arithmetic family: see gta_kernels.h.
#include "methods/gta_kernels.h"

#include <algorithm>
#include <bit>
#include <stdexcept>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include <hwy/contrib/sort/vqsort.h>

#include "kernels/convert.h"
#include "kernels/radix_select.h"
#include "kernels/simd.h"

namespace amalgam::mdetail {

// D = sum_k w_k (x_k - b), in model order (E_0 first, as sum_combine adds them).
template <class X>
inline __attribute__((always_inline)) void ta_accumulate_body(const X* const* xs, size_t M, const float* __restrict b,
                                                             const float* __restrict w, size_t n,
                                                             float* __restrict D) {
  {
    const X* __restrict x = xs[0];
    const float w0 = w[0];
    for (size_t i = 0; i < n; ++i) D[i] = w0 * (load_bf16(x[i]) - b[i]);
  }
  // Two models per sweep over D (half the loads and stores of D and b); the additions
  // stay in model order, so the bits equal one model per sweep.
  size_t k = 1;
  for (; k + 1 < M; k += 2) {
    const X* __restrict x = xs[k];
    const X* __restrict y = xs[k + 1];
    const float wx = w[k], wy = w[k + 1];
    for (size_t i = 0; i < n; ++i) D[i] = (D[i] + wx * (load_bf16(x[i]) - b[i])) + wy * (load_bf16(y[i]) - b[i]);
  }
  for (; k < M; ++k) {
    const X* __restrict x = xs[k];
    const float wk = w[k];
    for (size_t i = 0; i < n; ++i) D[i] += wk * (load_bf16(x[i]) - b[i]);
  }
}

AMALGAM_SIMD_CLONES void ta_accumulate(const float* const* xs, size_t M, const float* b, const float* w, size_t n,
                                       float* D) {
  ta_accumulate_body(xs, M, b, w, n, D);
}
AMALGAM_SIMD_CLONES void ta_accumulate(const uint16_t* const* xs, size_t M, const float* b, const float* w, size_t n,
                                       float* D) {
  ta_accumulate_body(xs, M, b, w, n, D);
}

// out = b + lambda * (D / z) with the optional steps skipped exactly as sum_combine does.
AMALGAM_SIMD_CLONES void finish_sum(float* __restrict D, size_t n, bool normalize, float z, float lambda,
                                    const float* __restrict b, float* __restrict out) {
  if (normalize)
    for (size_t i = 0; i < n; ++i) D[i] /= z;
  if (lambda != 1.0f)
    for (size_t i = 0; i < n; ++i) D[i] *= lambda;
  for (size_t i = 0; i < n; ++i) out[i] = b[i] + D[i];
}


template <class X>
inline __attribute__((always_inline)) void delta_keys_body(const X* x, const float* b, size_t n, float* d,
                                                          uint32_t* keys) {
  for (size_t i = 0; i < n; ++i) {
    d[i] = load_bf16(x[i]) - b[i];
    keys[i] = abs_key(d[i]);
  }
}
AMALGAM_SIMD_CLONES void delta_keys(const float* x, const float* b, size_t n, float* d, uint32_t* keys) {
  delta_keys_body(x, b, n, d, keys);
}
AMALGAM_SIMD_CLONES void delta_keys(const uint16_t* x, const float* b, size_t n, float* d, uint32_t* keys) {
  delta_keys_body(x, b, n, d, keys);
}

AMALGAM_SIMD_CLONES void delta_keys_only(const float* __restrict x, const float* __restrict b, size_t n,
                                         uint32_t* __restrict keys) {
  for (size_t i = 0; i < n; ++i) keys[i] = abs_key(x[i] - b[i]);
}
AMALGAM_SIMD_CLONES void delta_keys_only(const uint16_t* __restrict x, const uint16_t* __restrict b, size_t n,
                                         uint32_t* __restrict keys) {
  for (size_t i = 0; i < n; ++i) keys[i] = abs_key(load_bf16(x[i]) - load_bf16(b[i]));
}

AMALGAM_SIMD_CLONES void delta_only(const float* x, const float* b, size_t n, float* d) {
  for (size_t i = 0; i < n; ++i) d[i] = x[i] - b[i];
}
AMALGAM_SIMD_CLONES void delta_only(const uint16_t* x, const float* b, size_t n, float* d) {
  for (size_t i = 0; i < n; ++i) d[i] = load_bf16(x[i]) - b[i];
}

#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// A compare per 16 elements gives their 16 bits; a masked move per 16 gives them back.
__attribute__((target("avx512f"))) static void pack_words_avx512(const float* mask, size_t words, uint64_t* out) {
  const __m512 zero = _mm512_setzero_ps();
  for (size_t w = 0; w < words; ++w) {
    const float* m = mask + 64 * w;
    uint64_t v = 0;
    for (int q = 0; q < 4; ++q)
      v |= static_cast<uint64_t>(_mm512_cmp_ps_mask(_mm512_loadu_ps(m + 16 * q), zero, _CMP_NEQ_UQ)) << (16 * q);
    out[w] = v;
  }
}
__attribute__((target("avx512f"))) static void unpack_words_avx512(const uint64_t* in, size_t words, float* mask) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (size_t w = 0; w < words; ++w)
    for (int q = 0; q < 4; ++q)
      _mm512_storeu_ps(mask + 64 * w + 16 * q, _mm512_maskz_mov_ps(static_cast<__mmask16>(in[w] >> (16 * q)), one));
}
#pragma GCC diagnostic pop
#else
static void pack_words_avx512(const float*, size_t, uint64_t*) {}
static void unpack_words_avx512(const uint64_t*, size_t, float*) {}
#endif

void pack_mask_words(const float* mask, size_t words, uint64_t* out) {
  if (cpu_has_avx512f()) return pack_words_avx512(mask, words, out);
  for (size_t w = 0; w < words; ++w) {
    uint64_t v = 0;
    for (size_t j = 0; j < 64; ++j) v |= static_cast<uint64_t>(mask[64 * w + j] != 0.0f) << j;
    out[w] = v;
  }
}

void unpack_mask_words(const uint64_t* in, size_t words, float* mask) {
  if (cpu_has_avx512f()) return unpack_words_avx512(in, words, mask);
  for (size_t w = 0; w < words; ++w)
    for (size_t j = 0; j < 64; ++j) mask[64 * w + j] = static_cast<float>((in[w] >> j) & 1);
}

void bits_to_mask(const uint64_t* in, size_t n, float* mask) {
  unpack_mask_words(in, n / 64, mask);
  for (size_t i = n / 64 * 64; i < n; ++i) mask[i] = static_cast<float>((in[i / 64] >> (i % 64)) & 1);
}

// w * ((d * mask) * s) for mask 1 (keep) or 0, weigh's bits, signed zeros included: a
// bitwise select between the two computed values (a float select compiled to a branch
// that mispredicted half the time at density 0.5, 67% of a ties merge).
inline __attribute__((always_inline)) float weigh_selected(float d, float s, float w, bool keep) {
  const float kept = w * (d * s);
  const float dropped = w * ((d * 0.0f) * s);
  uint32_t kb, db;
  __builtin_memcpy(&kb, &kept, 4);
  __builtin_memcpy(&db, &dropped, 4);
  const uint32_t sel = 0u - static_cast<uint32_t>(keep);
  const uint32_t eb = (kb & sel) | (db & ~sel);
  float out;
  __builtin_memcpy(&out, &eb, 4);
  return out;
}

template <class X>
inline __attribute__((always_inline)) void bits_delta_body(const X* __restrict x, const float* __restrict b,
                                                           const uint64_t* __restrict words, size_t n, float s, float w,
                                                           float* __restrict e) {
  for (size_t g = 0; g < n; g += 32) {
    const uint32_t bits = static_cast<uint32_t>(words[g / 64] >> (g % 64));
    for (size_t j = 0; j < 32; ++j) {
      const float d = load_bf16(x[g + j]) - b[g + j];
      e[g + j] = weigh_selected(d, s, w, (bits >> j) & 1u);
    }
  }
}
AMALGAM_SIMD_CLONES void bits_delta(const float* x, const float* b, const uint64_t* words, size_t n, float s, float w,
                                    float* e) {
  bits_delta_body(x, b, words, n, s, w, e);
}
AMALGAM_SIMD_CLONES void bits_delta(const uint16_t* x, const float* b, const uint64_t* words, size_t n, float s,
                                    float w, float* e) {
  bits_delta_body(x, b, words, n, s, w, e);
}

template <class X>
inline __attribute__((always_inline)) uint64_t masked_delta_body(const X* __restrict x, const float* __restrict b, size_t n, uint32_t t,
                                          bool with_equal, float s, float w, float* __restrict e) {
  uint32_t equal = 0;
  const uint32_t lo = with_equal ? t : t + 1;  // key >= lo (t < 2^31: no overflow)
  for (size_t i = 0; i < n; ++i) {
    const float d = load_bf16(x[i]) - b[i];
    const uint32_t k = abs_key(d);
    e[i] = weigh_selected(d, s, w, k >= lo);
    equal += k == t;
  }
  return equal;
}

AMALGAM_SIMD_CLONES uint64_t masked_delta(const float* x, const float* b, size_t n, uint32_t t, bool with_equal,
                                          float s, float w, float* e) {
  return masked_delta_body(x, b, n, t, with_equal, s, w, e);
}
AMALGAM_SIMD_CLONES uint64_t masked_delta(const uint16_t* x, const float* b, size_t n, uint32_t t, bool with_equal,
                                          float s, float w, float* e) {
  return masked_delta_body(x, b, n, t, with_equal, s, w, e);
}

template <class X>
inline __attribute__((always_inline)) BandCounts band_delta_body(const X* __restrict x, const float* __restrict b,
                                                                size_t n, uint32_t keep_t, bool keep_equal,
                                                                uint32_t drop_t, bool drop_equal, float s, float w,
                                                                float* __restrict e) {
  // key >= lo is the cut; a cut with threshold 2^32 - 1 (nothing selected) and no equal
  // keys stays at 2^32 - 1, which no abs_key (< 2^31) reaches.
  const uint32_t keep_lo = keep_equal || keep_t == 0xffffffffu ? keep_t : keep_t + 1;
  const uint32_t drop_lo = drop_equal || drop_t == 0xffffffffu ? drop_t : drop_t + 1;
  uint32_t keq = 0, deq = 0;
  for (size_t i = 0; i < n; ++i) {
    const float d = load_bf16(x[i]) - b[i];
    const uint32_t k = abs_key(d);
    e[i] = weigh_selected(d, s, w, (k >= keep_lo) & (k < drop_lo));
    keq += k == keep_t;
    deq += k == drop_t;
  }
  return {keq, deq};
}
AMALGAM_SIMD_CLONES BandCounts band_delta(const float* x, const float* b, size_t n, uint32_t keep_t, bool keep_equal,
                                          uint32_t drop_t, bool drop_equal, float s, float w, float* e) {
  return band_delta_body(x, b, n, keep_t, keep_equal, drop_t, drop_equal, s, w, e);
}
AMALGAM_SIMD_CLONES BandCounts band_delta(const uint16_t* x, const float* b, size_t n, uint32_t keep_t,
                                          bool keep_equal, uint32_t drop_t, bool drop_equal, float s, float w,
                                          float* e) {
  return band_delta_body(x, b, n, keep_t, keep_equal, drop_t, drop_equal, s, w, e);
}

AMALGAM_SIMD_CLONES uint64_t count_delta_equal(const uint16_t* __restrict x, const uint16_t* __restrict b, size_t n,
                                              uint32_t t) {
  uint64_t equal = 0;
  for (size_t i = 0; i < n; ++i) equal += abs_key(load_bf16(x[i]) - load_bf16(b[i])) == t;
  return equal;
}

template <size_t kM>
inline __attribute__((always_inline)) bool band_sum_bf16_body(const uint16_t* const* xs, const uint16_t* __restrict base,
                                                             size_t n, const BandCut* cuts, bool normalize, float z,
                                                             float lambda, uint16_t* __restrict out,
                                                             BandCounts* counts) {
  const uint16_t* __restrict x[kM];
  uint32_t keep_lo[kM], drop_lo[kM], keep_t[kM], drop_t[kM], keq[kM], deq[kM];
  float s[kM], w[kM];
  for (size_t k = 0; k < kM; ++k) {
    const BandCut& c = cuts[k];
    x[k] = xs[k];
    keep_t[k] = c.keep_t;
    drop_t[k] = c.drop_t;
    keep_lo[k] = c.keep_equal || c.keep_t == 0xffffffffu ? c.keep_t : c.keep_t + 1;  // as band_delta
    drop_lo[k] = c.drop_equal || c.drop_t == 0xffffffffu ? c.drop_t : c.drop_t + 1;
    s[k] = c.s;
    w[k] = c.w;
    keq[k] = deq[k] = 0;
  }
  const bool scale = lambda != 1.0f;
  uint32_t nonfinite = 0;
  for (size_t i = 0; i < n; ++i) {
    const float b = load_bf16(base[i]);
    float D = 0.0f;
#pragma GCC unroll 8
    for (size_t k = 0; k < kM; ++k) {
      const float d = load_bf16(x[k][i]) - b;
      const uint32_t key = abs_key(d);
      const float e = weigh_selected(d, s[k], w[k], (key >= keep_lo[k]) & (key < drop_lo[k]));
      keq[k] += key == keep_t[k];
      deq[k] += key == drop_t[k];
      D = k == 0 ? e : D + e;
    }
    if (normalize) D /= z;
    if (scale) D *= lambda;
    const uint32_t u = std::bit_cast<uint32_t>(b + D);
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;  // f32_to_bf16_finite
    out[i] = static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : rounded);
    nonfinite |= (u & 0x7f800000u) + 0x00800000u;
  }
  for (size_t k = 0; k < kM; ++k) {
    counts[k].keep_equal += keq[k];
    counts[k].drop_equal += deq[k];
  }
  return (nonfinite & 0x80000000u) == 0;
}

template <size_t kM>
AMALGAM_SIMD_CLONES bool band_sum_bf16_fixed(const uint16_t* const* xs, const uint16_t* base, size_t n,
                                             const BandCut* cuts, bool normalize, float z, float lambda,
                                             uint16_t* out, BandCounts* counts) {
  return band_sum_bf16_body<kM>(xs, base, n, cuts, normalize, z, lambda, out, counts);
}

bool band_sum_bf16(const uint16_t* const* xs, size_t M, const uint16_t* base, size_t n, const BandCut* cuts,
                   bool normalize, float z, float lambda, uint16_t* out, BandCounts* counts) {
  // Tie counts are 32-bit per call: callers pass tiles, far below 2^32 elements.
  switch (M) {
    case 1: return band_sum_bf16_fixed<1>(xs, base, n, cuts, normalize, z, lambda, out, counts);
    case 2: return band_sum_bf16_fixed<2>(xs, base, n, cuts, normalize, z, lambda, out, counts);
    case 3: return band_sum_bf16_fixed<3>(xs, base, n, cuts, normalize, z, lambda, out, counts);
    case 4: return band_sum_bf16_fixed<4>(xs, base, n, cuts, normalize, z, lambda, out, counts);
    case 5: return band_sum_bf16_fixed<5>(xs, base, n, cuts, normalize, z, lambda, out, counts);
    case 6: return band_sum_bf16_fixed<6>(xs, base, n, cuts, normalize, z, lambda, out, counts);
    case 7: return band_sum_bf16_fixed<7>(xs, base, n, cuts, normalize, z, lambda, out, counts);
    case 8: return band_sum_bf16_fixed<8>(xs, base, n, cuts, normalize, z, lambda, out, counts);
  }
  throw std::logic_error("band_sum_bf16: more than kMaxBandModels models");
}

// e = w * (d * mask * s): mergekit's E_i = w_i * delta'_i.
AMALGAM_SIMD_CLONES void weigh(float* __restrict e, const float* __restrict mask, float s, float w, size_t n) {
  if (mask)
    for (size_t i = 0; i < n; ++i) e[i] = w * (e[i] * mask[i] * s);
  else
    for (size_t i = 0; i < n; ++i) e[i] = w * e[i];
}

// The same operations per element as the loops of consensus_combine below, in one pass
// for a fixed number of models: registers instead of the S, D, Z rows (consensus fell
// from 10.6% to 5% of a ties merge's CPU on the 0.5B bench).
template <size_t kM, bool kNormalize, bool kLambda>
inline __attribute__((always_inline)) void consensus_fixed(const float* __restrict E, size_t stride,
                                                           const float* __restrict w, size_t n, float lambda,
                                                           const float* __restrict base, float* __restrict out) {
  float wk[kM];
  for (size_t k = 0; k < kM; ++k) wk[k] = w[k];
  for (size_t i = 0; i < n; ++i) {
    float e[kM];
    for (size_t k = 0; k < kM; ++k) e[k] = E[k * stride + i];
    float s = e[0];
    for (size_t k = 1; k < kM; ++k) s += e[k];
    const float sign = s >= 0.0f ? 1.0f : -1.0f;
    float d = 0.0f, z = 0.0f;
    for (size_t k = 0; k < kM; ++k) {
      const float t = e[k] * sign;
      const float de = t > 0.0f ? e[k] : 0.0f;
      const float dz = t > 0.0f ? wk[k] : 0.0f;
      d = d + de;
      z = z + dz;
    }
    if constexpr (kNormalize) {
      const float fix = z == 0.0f ? 1.0f : 0.0f;
      d = d / (z + fix);
    }
    if constexpr (kLambda) d *= lambda;
    out[i] = base[i] + d;
  }
}

template <size_t kM>
inline __attribute__((always_inline)) void consensus_fixed(const float* E, size_t stride, const float* w, size_t n,
                                                           bool normalize, float lambda, const float* base,
                                                           float* out) {
  if (normalize) {
    if (lambda != 1.0f) consensus_fixed<kM, true, true>(E, stride, w, n, lambda, base, out);
    else consensus_fixed<kM, true, false>(E, stride, w, n, lambda, base, out);
  } else {
    if (lambda != 1.0f) consensus_fixed<kM, false, true>(E, stride, w, n, lambda, base, out);
    else consensus_fixed<kM, false, false>(E, stride, w, n, lambda, base, out);
  }
}

// TIES sign consensus over M weighted deltas (stride `stride`), then normalize, lambda and
// out = base + D. Zero entries never vote; S == 0 elects +.
AMALGAM_SIMD_CLONES void consensus_combine(const float* __restrict E, size_t stride, const float* __restrict w,
                                           size_t M, size_t n, bool normalize, float lambda,
                                           const float* __restrict base, float* __restrict out,
                                           float* __restrict S, float* __restrict D, float* __restrict Z) {
  switch (M) {
    case 1: return consensus_fixed<1>(E, stride, w, n, normalize, lambda, base, out);
    case 2: return consensus_fixed<2>(E, stride, w, n, normalize, lambda, base, out);
    case 3: return consensus_fixed<3>(E, stride, w, n, normalize, lambda, base, out);
    case 4: return consensus_fixed<4>(E, stride, w, n, normalize, lambda, base, out);
    case 5: return consensus_fixed<5>(E, stride, w, n, normalize, lambda, base, out);
    case 6: return consensus_fixed<6>(E, stride, w, n, normalize, lambda, base, out);
    case 7: return consensus_fixed<7>(E, stride, w, n, normalize, lambda, base, out);
    case 8: return consensus_fixed<8>(E, stride, w, n, normalize, lambda, base, out);
    default: break;
  }
  for (size_t i = 0; i < n; ++i) S[i] = E[i];
  for (size_t k = 1; k < M; ++k)
    for (size_t i = 0; i < n; ++i) S[i] += E[k * stride + i];
  // S becomes the elected sign (+1 / -1); e agrees iff e * sign > 0 (so e == 0 never does).
  for (size_t i = 0; i < n; ++i) {
    S[i] = S[i] >= 0.0f ? 1.0f : -1.0f;
    D[i] = 0.0f;
    Z[i] = 0.0f;
  }
  for (size_t k = 0; k < M; ++k) {
    const float* e = E + k * stride;
    const float wk = w[k];
    // Written as selects between computed values so that GCC vectorizes it under
    // -ftrapping-math.
    for (size_t i = 0; i < n; ++i) {
      const float ei = e[i];
      const float t = ei * S[i];
      const float de = t > 0.0f ? ei : 0.0f;
      const float dz = t > 0.0f ? wk : 0.0f;
      D[i] = D[i] + de;
      Z[i] = Z[i] + dz;
    }
  }
  if (normalize)
    for (size_t i = 0; i < n; ++i) {
      const float z = Z[i];
      const float fix = z == 0.0f ? 1.0f : 0.0f;  // Z exactly 0 -> 1 (z + 0 == z otherwise)
      D[i] = D[i] / (z + fix);
    }
  if (lambda != 1.0f)
    for (size_t i = 0; i < n; ++i) D[i] *= lambda;
  for (size_t i = 0; i < n; ++i) out[i] = base[i] + D[i];
}

// Without consensus: D = sum_k E_k (/ Z), lambda, out = base + D.
AMALGAM_SIMD_CLONES void sum_combine(const float* __restrict E, size_t stride, size_t M, size_t n, bool normalize,
                                     float z, float lambda, const float* __restrict base, float* __restrict out,
                                     float* __restrict D) {
  for (size_t i = 0; i < n; ++i) D[i] = E[i];
  for (size_t k = 1; k < M; ++k)
    for (size_t i = 0; i < n; ++i) D[i] += E[k * stride + i];
  if (normalize)
    for (size_t i = 0; i < n; ++i) D[i] /= z;
  if (lambda != 1.0f)
    for (size_t i = 0; i < n; ++i) D[i] *= lambda;
  for (size_t i = 0; i < n; ++i) out[i] = base[i] + D[i];
}

namespace {

// s.items[r] (low 32 bits) = position of the key of ascending rank r, ties by lower
// position (§8.4): (key << 32 | position) sorted ascending. Highway's vqsort (AVX-512 /
// AVX2 sorting networks) sorts a row in ~3.5 ns per key; the MSD counting sort it
// replaced (a 65536-bin histogram per row) took ~13 ns and was 61% of a della merge.
// The keys are distinct, so the order (and so every rank) does not depend on the sort.
void order_keys(const uint32_t* keys, size_t C, RankScratch& s) {
  s.items.resize(C);
  uint64_t* __restrict items = s.items.data();
  for (size_t i = 0; i < C; ++i) items[i] = (uint64_t{keys[i]} << 32) | static_cast<uint32_t>(i);
  thread_local hwy::Sorter sorter;
  sorter(items, C, hwy::SortAscending());
}

// Rows of up to 2^kPackedPositionBits keys sort 32-bit items: (key >> shift) << pb |
// position, with pb position bits, and shift the fewest key bits to drop so that the
// row's largest key fits beside them (keys < 2^31, and below 1.0 (2^30) in task
// vectors: shift = pb - 2 there). A 32-bit sort moves half the bytes of a 64-bit one and
// its vectors hold twice the keys (vqsort time halved on della). Items whose truncated
// keys are equal come out by position: right when their full keys are equal too (ties
// rank by position, §8.4), else the row is sorted again by (key << 32 | position).
// bf16-sourced task vectors have few significant bits, so that is rare; the check is one
// branch-free sweep (a loop that branched on each run mispredicted and cost more than the
// sort saved), and is skipped when no key had a dropped bit set (92% of the 896-key rows
// of the 0.5B bench; 85% with the fixed shift pb - 1 of before).
constexpr unsigned kPackedPositionBits = 14;

// The OR of the keys (its highest bit is the largest key's).
AMALGAM_SIMD_CLONES uint32_t or_keys(const uint32_t* __restrict keys, size_t C) {
  uint32_t all = 0;
  for (size_t i = 0; i < C; ++i) all |= keys[i];
  return all;
}

// items[i] = (keys[i] >> shift) << pb | i (vectorized: the scalar loop was a fifth of
// rank_lookup).
AMALGAM_SIMD_CLONES void pack_rank_items(const uint32_t* __restrict keys, size_t C, unsigned shift, unsigned pb,
                                         uint32_t* __restrict items) {
  for (size_t i = 0; i < C; ++i) items[i] = ((keys[i] >> shift) << pb) | static_cast<uint32_t>(i);
}

// rank_lookup_packed's sweep over the sorted items [from, C): out[position * stride] =
// table[rank], and with `check` whether some neighbours with equal truncated keys have
// their full keys out of order (item from - 1 is the first one's neighbour).
bool lookup_items(const uint32_t* keys, const uint32_t* items, size_t from, size_t C, unsigned pb, bool check,
                  const float* table, float* out, size_t stride) {
  const uint32_t pos_mask = (uint32_t{1} << pb) - 1;
  if (!check) {
    for (size_t q = from; q < C; ++q) out[(items[q] & pos_mask) * stride] = table[q];
    return false;
  }
  uint32_t misordered = 0;
  uint32_t prev_item = items[from == 0 ? 0 : from - 1];  // item 0's neighbour is itself
  uint32_t prev_key = keys[prev_item & pos_mask];
  for (size_t q = from; q < C; ++q) {
    const uint32_t pos = items[q] & pos_mask, key = keys[pos];
    misordered |= static_cast<uint32_t>((items[q] >> pb) == (prev_item >> pb)) & static_cast<uint32_t>(key < prev_key);
    prev_item = items[q];
    prev_key = key;
    out[pos * stride] = table[q];
  }
  return misordered != 0;
}

#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// lookup_items for stride 1, 16 sorted items at a time: out[position] = table[rank] by a
// scatter, and with `check` one gather of the items' full keys, compared with their
// neighbours' (the previous vector's last lane carried over).
__attribute__((target("avx512f"))) static bool lookup_items_avx512(const uint32_t* keys, const uint32_t* items,
                                                                   size_t C, unsigned pb, bool check,
                                                                   const float* table, float* out) {
  const uint32_t pos_mask = (uint32_t{1} << pb) - 1;
  const __m512i vmask = _mm512_set1_epi32(static_cast<int>(pos_mask));
  const __m128i count = _mm_cvtsi32_si128(static_cast<int>(pb));
  // Item 0's "previous" is itself: equal, not smaller.
  __m512i prev_it = _mm512_set1_epi32(static_cast<int>(items[0]));
  __m512i prev_k = _mm512_set1_epi32(static_cast<int>(keys[items[0] & pos_mask]));
  __mmask16 mis = 0;
  size_t q = 0;
  for (; q + 16 <= C; q += 16) {
    const __m512i it = _mm512_loadu_si512(items + q);
    const __m512i pos = _mm512_and_si512(it, vmask);
    _mm512_i32scatter_ps(out, pos, _mm512_loadu_ps(table + q), 4);
    if (check) {
      const __m512i k = _mm512_i32gather_epi32(pos, keys, 4);
      const __m512i itp = _mm512_alignr_epi32(it, prev_it, 15);  // items q - 1 .. q + 14
      const __m512i kp = _mm512_alignr_epi32(k, prev_k, 15);
      const __mmask16 same = _mm512_cmpeq_epi32_mask(_mm512_srl_epi32(it, count), _mm512_srl_epi32(itp, count));
      mis |= _mm512_mask_cmplt_epu32_mask(same, k, kp);
      prev_k = k;
    }
    prev_it = it;
  }
  const bool tail_misordered = lookup_items(keys, items, q, C, pb, check, table, out, 1);
  return mis != 0 || tail_misordered;
}
#pragma GCC diagnostic pop
#else
static bool lookup_items_avx512(const uint32_t* keys, const uint32_t* items, size_t C, unsigned pb, bool check,
                                const float* table, float* out) {
  return lookup_items(keys, items, 0, C, pb, check, table, out, 1);
}
#endif

void rank_lookup_packed(const uint32_t* keys, size_t C, const float* table, float* out, size_t stride,
                        RankScratch& s) {
  const unsigned pb = static_cast<unsigned>(64 - __builtin_clzll(static_cast<uint64_t>(C - 1)));
  const uint32_t all = or_keys(keys, C);
  const unsigned key_bits = all == 0 ? 0 : static_cast<unsigned>(32 - __builtin_clz(all));
  const unsigned shift = key_bits + pb > 32 ? key_bits + pb - 32 : 0;
  s.packed.resize(C);
  uint32_t* __restrict items = s.packed.data();
  pack_rank_items(keys, C, shift, pb, items);
  thread_local hwy::Sorter sorter;
  sorter(items, C, hwy::SortAscending());
  // No key lost a set bit: the packed keys order exactly like the keys (the usual case
  // for bf16 task vectors: 45% of this function's time went to the check below).
  const bool exact = (all & ((uint32_t{1} << shift) - 1)) == 0;
  const bool misordered = stride == 1 && cpu_has_avx512f()
                              ? lookup_items_avx512(keys, items, C, pb, !exact, table, out)
                              : lookup_items(keys, items, 0, C, pb, !exact, table, out, stride);
  // Redone from a full sort if misordered.
  if (misordered) {
    order_keys(keys, C, s);
    for (size_t q = 0; q < C; ++q) out[static_cast<uint32_t>(s.items[q]) * stride] = table[q];
  }
}

}  // namespace

void rank_keys(const uint32_t* keys, size_t C, uint32_t* rank, RankScratch& s) {
  order_keys(keys, C, s);
  for (size_t r = 0; r < C; ++r) rank[static_cast<uint32_t>(s.items[r])] = static_cast<uint32_t>(r);
}

void rank_lookup(const uint32_t* keys, size_t C, const float* table, float* out, size_t stride, RankScratch& s) {
  if (C >= 2 && C <= (size_t{1} << kPackedPositionBits)) return rank_lookup_packed(keys, C, table, out, stride, s);
  order_keys(keys, C, s);
  const uint64_t* items = s.items.data();
  for (size_t r = 0; r < C; ++r) out[static_cast<uint32_t>(items[r]) * stride] = table[r];
}

void rank_lookup_rows(const uint32_t* keys, size_t rows, size_t C, const float* table, float* out,
                      RankScratch& s) {
  for (size_t r = 0; r < rows; ++r) rank_lookup(keys + r * C, C, table, out + r * C, 1, s);
}

}  // namespace amalgam::mdetail
