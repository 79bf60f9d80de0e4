// Sixteen independent f64 accumulators (fixed lane = index mod 16), combined in a fixed
// order: four AVX2 vectors of independent additions (four accumulators were one
// dependency chain of vaddpd, 14% of a dare_ties merge), and the result is a pure
// function of the data and n, whichever clone runs.
#include "kernels/reduce.h"

#include <cmath>

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
  double acc[kAcc] = {}, acc_kept[kAcc] = {};
  size_t i = 0;
  for (; i + kAcc <= n; i += kAcc)
    for (size_t l = 0; l < kAcc; ++l) {
      acc[l] += std::fabs(static_cast<double>(x[i + l]));
      acc_kept[l] += std::fabs(static_cast<double>(x[i + l] * mask[i + l]));
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
