// f64 reductions: close to a long double reference, and a pure function of the data.
#include "kernels/reduce.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace amalgam {
namespace {

TEST(Reduce, MatchesLongDoubleReference) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0, 3);
  for (size_t n : {0u, 1u, 3u, 4u, 7u, 1024u, 100003u}) {
    std::vector<float> a(n), b(n);
    for (auto& x : a) x = nd(rng);
    for (auto& x : b) x = nd(rng);
    long double sa = 0, sd = 0, ss = 0;
    for (size_t i = 0; i < n; ++i) {
      sa += std::fabs(static_cast<long double>(a[i]));
      sd += static_cast<long double>(a[i]) * b[i];
      ss += static_cast<long double>(a[i]) * a[i];
    }
    EXPECT_NEAR(sum_abs_f64(a.data(), n), static_cast<double>(sa), 1e-9 * (1 + static_cast<double>(sa)));
    EXPECT_NEAR(dot_f64(a.data(), b.data(), n), static_cast<double>(sd), 1e-9 * (1 + static_cast<double>(ss)));
    EXPECT_NEAR(sum_sq_f64(a.data(), n), static_cast<double>(ss), 1e-9 * (1 + static_cast<double>(ss)));
  }
}

}  // namespace
}  // namespace amalgam
