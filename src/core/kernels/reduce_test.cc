// f64 reductions: close to a long double reference, and a pure function of the data.
#include "kernels/reduce.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
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

// From the inputs and mask bits, without storing d = x - b: the bits of sum_abs_pair_f64
// of d and the float mask, also where d is infinite or NaN (x * 0 is then NaN, which the
// masked-add shortcut cannot give: it falls back).
TEST(Reduce, SumAbsDeltaBitsEqualsThePairOfTheDeltas) {
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0, 3);
  for (size_t n : {0u, 1u, 15u, 16u, 64u, 100u, 1024u, 4099u})
    for (int special : {0, 1, 2}) {
      std::vector<float> x(n), b(n), d(n), mask(n);
      std::vector<uint16_t> xh(n);
      std::vector<uint64_t> bits((n + 63) / 64, 0);
      for (size_t i = 0; i < n; ++i) {
        xh[i] = static_cast<uint16_t>(std::bit_cast<uint32_t>(nd(rng)) >> 16);
        x[i] = std::bit_cast<float>(static_cast<uint32_t>(xh[i]) << 16);
        b[i] = nd(rng);
        mask[i] = static_cast<float>(rng() % 2);
        if (mask[i] != 0.0f) bits[i / 64] |= uint64_t{1} << (i % 64);
      }
      if (n > 5 && special) {  // a dropped Inf (1) or NaN (2) input
        x[n / 2] = special == 1 ? INFINITY : NAN;
        xh[n / 2] = special == 1 ? 0x7f80 : 0x7fc0;
        mask[n / 2] = 0.0f;
        bits[n / 2 / 64] &= ~(uint64_t{1} << (n / 2 % 64));
      }
      for (size_t i = 0; i < n; ++i) d[i] = x[i] - b[i];
      double want_all, want_kept, all = -1, kept = -1, all16 = -1, kept16 = -1;
      sum_abs_pair_f64(d.data(), mask.data(), n, &want_all, &want_kept);
      sum_abs_delta_bits_f64(x.data(), b.data(), bits.data(), n, &all, &kept);
      sum_abs_delta_bits_f64(xh.data(), b.data(), bits.data(), n, &all16, &kept16);
      for (double got : {all, all16}) EXPECT_EQ(std::bit_cast<uint64_t>(want_all), std::bit_cast<uint64_t>(got)) << n;
      for (double got : {kept, kept16})
        EXPECT_EQ(std::bit_cast<uint64_t>(want_kept), std::bit_cast<uint64_t>(got)) << n << " " << special;
    }
}

}  // namespace
}  // namespace amalgam
