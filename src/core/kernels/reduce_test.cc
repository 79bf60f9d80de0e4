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

// The fused pair gives sum_abs_f64's bits for x and for x after the mask (DARE's rescale
// sums depend on it: the output bytes did not change when it replaced two sweeps).
TEST(Reduce, SumAbsPairEqualsTwoSweeps) {
  std::mt19937 rng(8);
  std::normal_distribution<float> nd(0, 3);
  for (size_t n : {0u, 1u, 15u, 16u, 17u, 1024u, 100003u}) {
    std::vector<float> x(n), mask(n), masked(n);
    for (size_t i = 0; i < n; ++i) {
      x[i] = nd(rng);
      mask[i] = static_cast<float>(rng() % 2);
      masked[i] = x[i] * mask[i];
    }
    double all = -1, kept = -1;
    sum_abs_pair_f64(x.data(), mask.data(), n, &all, &kept);
    EXPECT_EQ(all, sum_abs_f64(x.data(), n));
    EXPECT_EQ(kept, sum_abs_f64(masked.data(), n));
  }
}

}  // namespace
}  // namespace amalgam
