// Philox-4x32-10 against the Random123 known-answer vectors; the batched keep bits
// against the scalar draw (AVX-512 and portable, any offset and length, thresholds that
// the high half alone cannot decide); the masks' basic statistics.
#include "kernels/philox.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace amalgam {
namespace {

TEST(Philox, Random123KnownAnswers) {
  using A4 = std::array<uint32_t, 4>;
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}), (A4{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
  EXPECT_EQ(philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu}),
            (A4{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
  EXPECT_EQ(philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u}),
            (A4{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
}

// The draw is built from the documented counters and halves.
TEST(Philox, DrawIsTheDocumentedHalves) {
  const uint64_t key = philox_tensor_key(7, "w");
  const std::array<uint32_t, 2> k = {static_cast<uint32_t>(key), static_cast<uint32_t>(key >> 32)};
  for (uint64_t e : {0ull, 5ull, 8ull, 1000003ull, (1ull << 35) + 3}) {
    const uint64_t g = e / 8;
    const unsigned j = static_cast<unsigned>(e % 8);
    auto hi = philox4x32_10({static_cast<uint32_t>(g), static_cast<uint32_t>(g >> 32), 3, 0}, k);
    auto lo = philox4x32_10({static_cast<uint32_t>(g), static_cast<uint32_t>(g >> 32), 3, 1}, k);
    const uint32_t h = (hi[j / 2] >> (16 * (j % 2))) & 0xffff, l = (lo[j / 2] >> (16 * (j % 2))) & 0xffff;
    EXPECT_EQ(philox_draw(key, 3, e), h << 16 | l) << e;
  }
}

void expect_bits(const std::vector<uint64_t>& bits, size_t n, uint64_t key, uint32_t model, uint64_t first,
                 const std::vector<double>& p, const char* what) {
  ASSERT_EQ(bits.size(), (n + 63) / 64);
  for (size_t i = 0; i < bits.size() * 64; ++i) {
    const bool got = (bits[i / 64] >> (i % 64)) & 1;
    const bool want = i < n && philox_keep(key, model, first + i, p[i]);
    ASSERT_EQ(got, want) << what << " " << first << "+" << i << " of " << n << " p " << p[i < n ? i : 0];
  }
}

TEST(Philox, KeepBitsEqualTheScalarDrawAtAnyOffset) {
  const uint64_t key = philox_tensor_key(42, "model.layers.3.mlp.up_proj.weight");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::mt19937_64 rng(5);
  for (uint64_t first : {0ull, 1ull, 3ull, 8ull, 63ull, 64ull, 256ull, 1000003ull, (1ull << 33) + 5, 1ull << 33}) {
    for (size_t n : {1u, 5u, 64u, 200u, 256u, 1000u, 3000u}) {
      // A constant p, including one the high half cannot decide for the middle element.
      const uint32_t mid = philox_draw(key, 2, first + n / 2);
      for (double p : {0.0, 0.3, 0.5, 1.0, 1.5, -0.2, nan, ((mid >> 16) + 0.5) / 65536}) {
        std::vector<uint64_t> bits((n + 63) / 64, ~0ull), portable(bits.size(), ~0ull);
        philox_keep_bits(key, 2, first, n, p, bits.data());
        philox_keep_bits_portable(key, 2, first, n, p, portable.data());
        const std::vector<double> pv(n, p);
        expect_bits(bits, n, key, 2, first, pv, "constant");
        ASSERT_EQ(bits, portable) << first << "+" << n << " p " << p;
      }
      // A p per element: random, edge values, and the element's own draw (rounded to
      // f32), which the high half alone cannot decide.
      std::vector<float> pf(n);
      std::uniform_real_distribution<float> u(0.0f, 1.0f);
      for (size_t i = 0; i < n; ++i) {
        const uint64_t e = first + i;
        switch (i % 6) {
          case 0: pf[i] = static_cast<float>(philox_draw(key, 2, e) * 0x1p-32); break;
          case 1: pf[i] = i % 12 == 1 ? 1.0f : -0.0f; break;
          case 2: pf[i] = i % 12 == 2 ? std::numeric_limits<float>::quiet_NaN() : 2.0f; break;
          case 3: pf[i] = i % 12 == 3 ? -1.0f : 1e-30f; break;
          default: pf[i] = u(rng);
        }
      }
      std::vector<uint64_t> bits((n + 63) / 64, ~0ull), portable(bits.size(), ~0ull);
      philox_keep_bits_v(key, 2, first, n, pf.data(), bits.data());
      philox_keep_bits_v_portable(key, 2, first, n, pf.data(), portable.data());
      expect_bits(bits, n, key, 2, first, std::vector<double>(pf.begin(), pf.end()), "per element");
      ASSERT_EQ(bits, portable) << first << "+" << n;
    }
  }
}

// The edge cases of the exact test, by hand.
TEST(Philox, KeepIsTheDrawBelowPTimesTwoToThe32) {
  const uint64_t key = philox_tensor_key(1, "x");
  for (uint64_t e = 0; e < 100; ++e) {
    const uint32_t u = philox_draw(key, 0, e);
    EXPECT_FALSE(philox_keep(key, 0, e, u * 0x1p-32)) << e;
    EXPECT_TRUE(philox_keep(key, 0, e, (u + 1.0) * 0x1p-32)) << e;
    EXPECT_TRUE(philox_keep(key, 0, e, 1.0));
    EXPECT_FALSE(philox_keep(key, 0, e, 0.0));
  }
}

// Elements whose high half is 0 or 65535 (one in 65536 each) at p = 0, tiny, 1 and NaN:
// the thresholds' clamps must leave the decision to the exact test.
TEST(Philox, KeepBitsAtTheHighHalfsExtremes) {
  const uint64_t key = philox_tensor_key(3, "edge");
  for (uint32_t want : {0u, 65535u}) {
    uint64_t e = 0;
    while (philox_draw(key, 1, e) >> 16 != want) ++e;
    const uint64_t first = e / 64 * 64;
    const size_t n = 256;
    for (double p : {0.0, 1e-30, 1.0, std::numeric_limits<double>::quiet_NaN()}) {
      std::vector<uint64_t> bits(n / 64), portable(n / 64), v(n / 64), v_portable(n / 64);
      const std::vector<float> pf(n, static_cast<float>(p));
      philox_keep_bits(key, 1, first, n, p, bits.data());
      philox_keep_bits_portable(key, 1, first, n, p, portable.data());
      philox_keep_bits_v(key, 1, first, n, pf.data(), v.data());
      philox_keep_bits_v_portable(key, 1, first, n, pf.data(), v_portable.data());
      for (auto* got : {&bits, &portable, &v, &v_portable})
        expect_bits(*got, n, key, 1, first, std::vector<double>(n, static_cast<float>(p)), "extreme");
      EXPECT_EQ(((bits[(e - first) / 64] >> ((e - first) % 64)) & 1) != 0, p >= 1) << want << " " << p;
    }
  }
}

TEST(Philox, MasksKeepTheirFractionAndKeysSeparateStreams) {
  const uint64_t key = philox_tensor_key(0, "t");
  const size_t n = 1 << 20;
  std::vector<uint64_t> a(n / 64), b(n / 64);
  philox_keep_bits(key, 0, 0, n, 0.3, a.data());
  philox_keep_bits(key, 1, 0, n, 0.3, b.data());
  double kept = 0, both = 0, mean = 0;
  for (size_t w = 0; w < n / 64; ++w) {
    kept += __builtin_popcountll(a[w]);
    both += __builtin_popcountll(a[w] & b[w]);
  }
  for (uint64_t e = 0; e < 65536; ++e) mean += philox_draw(key, 0, e) * 0x1p-32;
  EXPECT_NEAR(kept / n, 0.3, 0.002);
  EXPECT_NEAR(both / n, 0.09, 0.002);  // independent across models
  EXPECT_NEAR(mean / 65536, 0.5, 0.005);
  EXPECT_NE(philox_tensor_key(0, "a"), philox_tensor_key(0, "b"));
  EXPECT_NE(philox_tensor_key(0, "a"), philox_tensor_key(1, "a"));
}

}  // namespace
}  // namespace amalgam
