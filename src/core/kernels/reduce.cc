// Four independent f64 accumulators (fixed lane = index mod 4), combined in a fixed
// order: vectorizable, and the result is a pure function of the data and n.
#include "kernels/reduce.h"

#include <cmath>

namespace amalgam {

double sum_abs_f64(const float* x, size_t n) {
  double acc[4] = {0, 0, 0, 0};
  size_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int l = 0; l < 4; ++l) acc[l] += std::fabs(static_cast<double>(x[i + l]));
  for (; i < n; ++i) acc[i & 3] += std::fabs(static_cast<double>(x[i]));
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

double dot_f64(const float* a, const float* b, size_t n) {
  double acc[4] = {0, 0, 0, 0};
  size_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int l = 0; l < 4; ++l) acc[l] += static_cast<double>(a[i + l]) * b[i + l];
  for (; i < n; ++i) acc[i & 3] += static_cast<double>(a[i]) * b[i];
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

double sum_sq_f64(const float* x, size_t n) { return dot_f64(x, x, n); }

}  // namespace amalgam
