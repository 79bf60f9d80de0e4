// Sixteen independent f64 accumulators (fixed lane = index mod 16), combined in a fixed
// order: four AVX2 vectors of independent additions (four accumulators were one
// dependency chain of vaddpd, 14% of a dare_ties merge), and the result is a pure
// function of the data and n, whichever clone runs.
#include "kernels/reduce.h"

#include <cmath>
#include <cstdint>
#include <cstring>

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
