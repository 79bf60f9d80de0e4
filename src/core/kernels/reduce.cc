// Sixteen independent f64 accumulators (fixed lane = index mod 16), combined in a fixed
// order: four AVX2 vectors of independent additions (four accumulators were one
// dependency chain of vaddpd, 14% of a dare_ties merge), and the result is a pure
// function of the data and n, whichever clone runs.
#include "kernels/reduce.h"

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "kernels/avx512_keys.h"
#include "kernels/convert.h"
#include "kernels/simd.h"

namespace amalgam {
namespace {
constexpr size_t kAcc = 16;

double combine(const double* acc) {
  double s[kAcc];
  for (size_t l = 0; l < kAcc; ++l) s[l] = acc[l];
  for (size_t w = kAcc / 2; w >= 1; w /= 2)
    for (size_t l = 0; l < w; ++l) s[l] = s[l] + s[l + w];
  return s[0];
}
typedef float v8f __attribute__((vector_size(32)));
typedef double v8d __attribute__((vector_size(64)));
typedef uint64_t v8u __attribute__((vector_size(64)));

// acc += |double(v)| lane-wise (by reference: vectors passed by value would change the
// ABI of the non-AVX clones).
inline __attribute__((always_inline)) void add_abs(v8d& acc, const v8f& v) {
  const v8u bits = reinterpret_cast<v8u>(__builtin_convertvector(v, v8d));
  acc += reinterpret_cast<v8d>(bits & (~uint64_t{0} >> 1));
}
}  // namespace

AMALGAM_SIMD_CLONES double sum_abs_f64(const float* x, size_t n) {
  double acc[kAcc] = {};
  size_t i = 0;
  for (; i + kAcc <= n; i += kAcc)
    for (size_t l = 0; l < kAcc; ++l) acc[l] += std::fabs(static_cast<double>(x[i + l]));
  for (; i < n; ++i) acc[i % kAcc] += std::fabs(static_cast<double>(x[i]));
  return combine(acc);
}

AMALGAM_SIMD_CLONES void sum_abs_pair_f64(const float* x, const float* mask, size_t n, double* all, double* kept) {
  // Written with vector types: as plain loops GCC 12 left one of the two sums scalar
  // (15% of a dare_ties merge). Lane l of the two 8-wide halves is accumulator l and
  // l + 8: the same additions in the same order as sum_abs_f64.
  v8d a0 = {}, a1 = {}, k0 = {}, k1 = {};
  size_t i = 0;
  for (; i + kAcc <= n; i += kAcc) {
    v8f x0, x1, m0, m1;
    std::memcpy(&x0, x + i, 32);
    std::memcpy(&x1, x + i + 8, 32);
    std::memcpy(&m0, mask + i, 32);
    std::memcpy(&m1, mask + i + 8, 32);
    add_abs(a0, x0);
    add_abs(a1, x1);
    add_abs(k0, x0 * m0);
    add_abs(k1, x1 * m1);
  }
  double acc[kAcc], acc_kept[kAcc];
  for (size_t l = 0; l < 8; ++l) {
    acc[l] = a0[l], acc[l + 8] = a1[l];
    acc_kept[l] = k0[l], acc_kept[l + 8] = k1[l];
  }
  for (; i < n; ++i) {
    acc[i % kAcc] += std::fabs(static_cast<double>(x[i]));
    acc_kept[i % kAcc] += std::fabs(static_cast<double>(x[i] * mask[i]));
  }
  *all = combine(acc);
  *kept = combine(acc_kept);
}

namespace {
inline float mask_bit(const uint64_t* bits, size_t i) { return static_cast<float>((bits[i / 64] >> (i % 64)) & 1); }

// Element i of sum_abs_pair_f64's two sums, as it adds them: |double(d)| and
// |double(d * mask)| into lane i % 16.
template <class X>
inline void add_delta_exact(const X* x, const float* b, const uint64_t* bits, size_t i, double* acc,
                            double* acc_kept) {
  const float d = load_bf16(x[i]) - b[i];
  acc[i % kAcc] += std::fabs(static_cast<double>(d));
  acc_kept[i % kAcc] += std::fabs(static_cast<double>(d * mask_bit(bits, i)));
}

template <class X>
void delta_sums_exact(const X* x, const float* b, const uint64_t* bits, size_t n, double* all, double* kept) {
  double acc[kAcc] = {}, acc_kept[kAcc] = {};
  for (size_t i = 0; i < n; ++i) add_delta_exact(x, b, bits, i, acc, acc_kept);
  *all = combine(acc);
  *kept = combine(acc_kept);
}

#if defined(__x86_64__) && defined(__GNUC__)
// GCC 12's avx512fintrin.h warns about itself when inlined (see philox.cc).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
using keys::load16;
// Where d is finite, |double(d * 0)| is +0 and a lane sum (never -0) plus +0 is itself:
// the kept lanes add |double(d)| under the mask bits instead (a masked add in place of a
// multiply, a conversion and an abs). A non-finite d (d * 0 is NaN) makes the sum of all
// non-finite: false, and the caller redoes both sums exactly.
template <class X>
__attribute__((target("avx512f"))) bool delta_sums_avx512(const X* x, const float* b, const uint64_t* bits, size_t n,
                                                           double* all, double* kept) {
  const __m512i abs_mask = _mm512_set1_epi64(0x7fffffffffffffffll);
  __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd(), k0 = _mm512_setzero_pd(), k1 = _mm512_setzero_pd();
  size_t i = 0;
  for (; i + kAcc <= n; i += kAcc) {
    const uint32_t m = static_cast<uint32_t>(bits[i / 64] >> (i % 64));
    const __m512 d = _mm512_sub_ps(load16(x + i), _mm512_loadu_ps(b + i));
    const __m512d d0 = _mm512_castsi512_pd(
        _mm512_and_si512(_mm512_castpd_si512(_mm512_cvtps_pd(_mm512_castps512_ps256(d))), abs_mask));
    const __m512d d1 = _mm512_castsi512_pd(_mm512_and_si512(
        _mm512_castpd_si512(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(d), 1)))),
        abs_mask));
    a0 = _mm512_add_pd(a0, d0);
    a1 = _mm512_add_pd(a1, d1);
    k0 = _mm512_mask_add_pd(k0, static_cast<__mmask8>(m), k0, d0);
    k1 = _mm512_mask_add_pd(k1, static_cast<__mmask8>(m >> 8), k1, d1);
  }
  double acc[kAcc], acc_kept[kAcc];
  _mm512_storeu_pd(acc, a0);
  _mm512_storeu_pd(acc + 8, a1);
  _mm512_storeu_pd(acc_kept, k0);
  _mm512_storeu_pd(acc_kept + 8, k1);
  for (; i < n; ++i) add_delta_exact(x, b, bits, i, acc, acc_kept);
  *all = combine(acc);
  *kept = combine(acc_kept);
  return std::isfinite(*all);
}
#pragma GCC diagnostic pop
#endif

template <class X>
void delta_sums(const X* x, const float* b, const uint64_t* bits, size_t n, double* all, double* kept) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (cpu_has_avx512f() && delta_sums_avx512(x, b, bits, n, all, kept)) return;
#endif
  delta_sums_exact(x, b, bits, n, all, kept);
}
}  // namespace

void sum_abs_delta_bits_f64(const float* x, const float* b, const uint64_t* bits, size_t n, double* all,
                            double* kept) {
  delta_sums(x, b, bits, n, all, kept);
}
void sum_abs_delta_bits_f64(const uint16_t* x, const float* b, const uint64_t* bits, size_t n, double* all,
                            double* kept) {
  delta_sums(x, b, bits, n, all, kept);
}

AMALGAM_SIMD_CLONES double dot_f64(const float* a, const float* b, size_t n) {
  double acc[kAcc] = {};
  size_t i = 0;
  for (; i + kAcc <= n; i += kAcc)
    for (size_t l = 0; l < kAcc; ++l) acc[l] += static_cast<double>(a[i + l]) * b[i + l];
  for (; i < n; ++i) acc[i % kAcc] += static_cast<double>(a[i]) * b[i];
  return combine(acc);
}

double sum_sq_f64(const float* x, size_t n) { return dot_f64(x, x, n); }

}  // namespace amalgam
