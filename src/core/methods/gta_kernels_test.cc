// DELLA's per-row rank lookups: rank_lookup_rows and rank_lookup (a packed 32-bit sort for
// rows of up to 2^14 keys, with a fallback where truncated keys collide out of order) give
// exactly the ranks of rank_keys' 64-bit sort, ties by lower position, for any row length
// and stride. band_delta (breadcrumbs' fused band) gives the bits of its two cuts and
// weigh, from f32 and from bf16. consensus_combine's fused loop for 1-8 models gives the
// bits of its row-by-row loops (a scalar copy of them here), zeros and NaNs included.
// band_sum_bf16 (breadcrumbs' whole bf16 tile) gives the bits of band_delta,
// sum_combine and the rounding. DARE's bit kernels give the bits of the float-mask steps
// they replace.
#include "methods/gta_kernels.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/convert.h"
#include "kernels/radix_select.h"

#include <gtest/gtest.h>

namespace amalgam::mdetail {
namespace {

TEST(GtaKernels, RankLookupEqualsTheSortedRanks) {
  std::mt19937_64 rng(11);
  for (size_t C : {size_t{1}, size_t{2}, size_t{7}, size_t{64}, size_t{896}, size_t{4864}, size_t{70000}}) {
    const size_t rows = C >= 70000 ? 2 : 37;
    std::vector<uint32_t> keys(rows * C);
    // Rows of few distinct keys (many ties); of full 31-bit keys; of keys that differ only
    // in their low 12 bits (the packed 32-bit sort truncates them: its fallback re-sorts);
    // of such keys ascending with the position (truncated runs already in order); and of
    // keys whose low 16 bits are zero (bf16-like: packed without loss, no check).
    for (size_t r = 0; r < rows; ++r)
      for (size_t i = 0; i < C; ++i) {
        uint32_t& k = keys[r * C + i];
        switch (r % 5) {
          case 4: k = static_cast<uint32_t>(rng() & 0x7fff0000u); break;  // packed without loss
          case 0: k = static_cast<uint32_t>(rng() % 5); break;
          case 1: k = static_cast<uint32_t>(rng() & 0x7fffffffu); break;
          case 2: k = 0x3c000000u + static_cast<uint32_t>(rng() % 4096); break;
          default: k = 0x3c000000u + static_cast<uint32_t>(i) * 3; break;
        }
      }
    std::vector<float> table(C);
    for (size_t q = 0; q < C; ++q) table[q] = static_cast<float>(q) + 0.5f;
    std::vector<float> want(rows * C), got(rows * C, -1.0f);
    RankScratch s;
    std::vector<uint32_t> rank(C);
    for (size_t r = 0; r < rows; ++r) {
      rank_keys(keys.data() + r * C, C, rank.data(), s);
      for (size_t i = 0; i < C; ++i) want[r * C + i] = table[rank[i]];
    }
    rank_lookup_rows(keys.data(), rows, C, table.data(), got.data(), s);
    ASSERT_EQ(got, want) << "C=" << C;
    // Strided: row r's keys written to every 3rd element.
    std::vector<float> strided(3 * C, -1.0f);
    for (size_t r = 0; r < rows; ++r) {
      rank_lookup(keys.data() + r * C, C, table.data(), strided.data(), 3, s);
      for (size_t i = 0; i < C; ++i) ASSERT_EQ(strided[3 * i], want[r * C + i]) << "C=" << C << " row " << r;
    }
  }
}

TEST(GtaKernels, BandDeltaEqualsTwoCutsAndWeigh) {
  std::mt19937_64 rng(5);
  const size_t n = 3000;
  std::vector<uint16_t> x16(n), b16(n);
  std::vector<float> x(n), b(n), d(n), e(n), want(n);
  for (size_t i = 0; i < n; ++i) {
    // Multiples of 1/64 (exact in bf16): few distinct magnitudes, many keys on a threshold.
    b[i] = static_cast<float>(static_cast<int>(rng() % 256) - 128) / 64.0f;
    x[i] = b[i] + static_cast<float>(static_cast<int>(rng() % 9) - 4) / 64.0f;
    x16[i] = f32_to_bf16(x[i]);
    b16[i] = f32_to_bf16(b[i]);
    d[i] = x[i] - b[i];
  }
  const uint32_t k1 = abs_key(1.0f / 64), k2 = abs_key(3.0f / 64), k4 = abs_key(4.0f / 64);
  struct Cut {
    uint32_t t;
    bool equal;
  };
  for (Cut keep : {Cut{0, true}, Cut{k1, true}, Cut{k1, false}, Cut{0xffffffffu, true}})
    for (Cut drop : {Cut{k2, true}, Cut{k2, false}, Cut{k4, false}, Cut{0xffffffffu, true}, Cut{0xffffffffu, false}}) {
      uint64_t keq = 0, deq = 0;
      for (size_t i = 0; i < n; ++i) {
        const uint32_t k = abs_key(d[i]);
        const float kept = (keep.equal ? k >= keep.t : k > keep.t) ? 1.0f : 0.0f;
        const float dropped = (drop.equal ? k >= drop.t : k > drop.t) ? 1.0f : 0.0f;
        const float mask = kept * (1.0f - dropped);
        want[i] = 0.7f * (d[i] * mask * 1.3f);
        keq += k == keep.t;
        deq += k == drop.t;
      }
      for (int bf16 = 0; bf16 < 2; ++bf16) {
        const BandCounts c = bf16 ? band_delta(x16.data(), b.data(), n, keep.t, keep.equal, drop.t, drop.equal, 1.3f,
                                               0.7f, e.data())
                                  : band_delta(x.data(), b.data(), n, keep.t, keep.equal, drop.t, drop.equal, 1.3f,
                                               0.7f, e.data());
        EXPECT_EQ(std::memcmp(e.data(), want.data(), n * sizeof(float)), 0)
            << "keep " << keep.t << "/" << keep.equal << " drop " << drop.t << "/" << drop.equal << " bf16 " << bf16;
        EXPECT_EQ(c.keep_equal, keq);
        EXPECT_EQ(c.drop_equal, deq);
      }
    }
}

// The fused bf16 tile: band_delta per model (f32 base), sum_combine, f32_to_bf16_finite;
// every model count 1-8, cuts on and off threshold, unsparsified models, normalize and
// lambda, and non-finite results (bits and flag).
TEST(GtaKernels, BandSumBf16EqualsItsSteps) {
  std::mt19937_64 rng(9);
  const size_t n = 1500;
  const uint32_t k1 = abs_key(1.0f / 64), k2 = abs_key(3.0f / 64), k4 = abs_key(4.0f / 64);
  for (size_t M = 1; M <= kMaxBandModels; ++M)
    for (int variant = 0; variant < 6; ++variant) {
      std::vector<uint16_t> b16(n);
      std::vector<std::vector<uint16_t>> x16(M, std::vector<uint16_t>(n));
      std::vector<float> b(n);
      for (size_t i = 0; i < n; ++i) {
        b[i] = static_cast<float>(static_cast<int>(rng() % 256) - 128) / 64.0f;
        if (variant == 5 && i % 97 == 3) b[i] = 3e38f;  // overflows once the deltas are added
        b16[i] = f32_to_bf16(b[i]);
        b[i] = load_bf16(b16[i]);
      }
      for (size_t k = 0; k < M; ++k)
        for (size_t i = 0; i < n; ++i) {
          float v = b[i] + static_cast<float>(static_cast<int>(rng() % 9) - 4) / 64.0f;
          if (variant == 5 && i % 97 == 3) v = -3e38f;
          if (variant == 4 && i == 77 && k == M - 1) v = std::numeric_limits<float>::quiet_NaN();
          x16[k][i] = f32_to_bf16(v);
        }
      std::vector<BandCut> cuts(M);
      const uint32_t keeps[] = {0, k1, k1, 0xffffffffu}, drops[] = {k2, k4, 0xffffffffu, k2};
      for (size_t k = 0; k < M; ++k) {
        cuts[k].w = 0.3f + 0.2f * static_cast<float>(k);
        cuts[k].s = k % 2 ? 1.3f : 1.0f;
        if ((k + static_cast<size_t>(variant)) % 3 == 2) continue;  // not sparsified
        cuts[k].keep_t = keeps[(k + static_cast<size_t>(variant)) % 4];
        cuts[k].drop_t = drops[(k * 3 + static_cast<size_t>(variant)) % 4];
        cuts[k].keep_equal = (k + static_cast<size_t>(variant)) % 2 == 0;
        cuts[k].drop_equal = k % 3 == 1;
      }
      const bool normalize = variant % 2 == 1;
      const float z = 1.7f, lambda = variant >= 2 ? 0.6f : 1.0f;
      // The steps of merge_tiles' general bf16 path.
      std::vector<float> E(M * n), D(n), out32(n);
      std::vector<BandCounts> want_counts(M);
      for (size_t k = 0; k < M; ++k)
        want_counts[k] = band_delta(x16[k].data(), b.data(), n, cuts[k].keep_t, cuts[k].keep_equal, cuts[k].drop_t,
                                    cuts[k].drop_equal, cuts[k].s, cuts[k].w, E.data() + k * n);
      sum_combine(E.data(), n, M, n, normalize, z, lambda, b.data(), out32.data(), D.data());
      std::vector<uint16_t> want(n), got(n);
      const bool want_finite = f32_to_bf16_finite(out32.data(), want.data(), n);
      std::vector<const uint16_t*> xs(M);
      for (size_t k = 0; k < M; ++k) xs[k] = x16[k].data();
      std::vector<BandCounts> counts(M);
      counts[0].keep_equal = 5;  // added to
      const bool finite =
          band_sum_bf16(xs.data(), M, b16.data(), n, cuts.data(), normalize, z, lambda, got.data(), counts.data());
      EXPECT_EQ(finite, want_finite) << "M " << M << " variant " << variant;
      EXPECT_EQ(want_finite, variant < 4) << "M " << M << " variant " << variant;
      EXPECT_EQ(got, want) << "M " << M << " variant " << variant;
      for (size_t k = 0; k < M; ++k) {
        EXPECT_EQ(counts[k].keep_equal, want_counts[k].keep_equal + (k == 0 ? 5 : 0)) << "M " << M << " model " << k;
        EXPECT_EQ(counts[k].drop_equal, want_counts[k].drop_equal) << "M " << M << " model " << k;
      }
      // count_delta_equal: the keys == a threshold of each model's deltas.
      for (size_t k = 0; k < M; ++k)
        for (uint32_t t : {k1, k2, k4, 0u}) {
          uint64_t equal = 0;
          for (size_t i = 0; i < n; ++i) equal += abs_key(load_bf16(x16[k][i]) - b[i]) == t;
          EXPECT_EQ(count_delta_equal(x16[k].data(), b16.data(), n, t), equal);
        }
    }
}

// consensus_combine's row-by-row loops, one element at a time.
void consensus_reference(const float* E, size_t stride, const float* w, size_t M, size_t n, bool normalize,
                         float lambda, const float* base, float* out) {
  for (size_t i = 0; i < n; ++i) {
    float s = E[i];
    for (size_t k = 1; k < M; ++k) s += E[k * stride + i];
    s = s >= 0.0f ? 1.0f : -1.0f;
    float d = 0.0f, z = 0.0f;
    for (size_t k = 0; k < M; ++k) {
      const float e = E[k * stride + i], t = e * s;
      d = d + (t > 0.0f ? e : 0.0f);
      z = z + (t > 0.0f ? w[k] : 0.0f);
    }
    if (normalize) d = d / (z + (z == 0.0f ? 1.0f : 0.0f));
    if (lambda != 1.0f) d *= lambda;
    out[i] = base[i] + d;
  }
}

TEST(GtaKernels, ConsensusCombineEqualsItsRowLoops) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const size_t n = 1000, stride = 1024;  // n not a multiple of the vector width
  for (size_t M = 1; M <= 10; ++M) {
    std::vector<float> E(M * stride), w(M), base(n);
    for (float& e : E) {
      const uint64_t r = rng() % 16;
      e = r == 0 ? 0.0f : r == 1 ? -0.0f : r == 2 && M == 3 ? std::nanf("") : u(rng);
    }
    for (float& x : w) x = u(rng) + 1.5f;
    for (float& b : base) b = u(rng);
    for (bool normalize : {false, true})
      for (float lambda : {1.0f, 0.7f}) {
        std::vector<float> want(n), got(n), S(n), D(n), Z(n);
        consensus_reference(E.data(), stride, w.data(), M, n, normalize, lambda, base.data(), want.data());
        consensus_combine(E.data(), stride, w.data(), M, n, normalize, lambda, base.data(), got.data(), S.data(),
                          D.data(), Z.data());
        ASSERT_EQ(0, std::memcmp(want.data(), got.data(), n * sizeof(float)))
            << "M " << M << " normalize " << normalize << " lambda " << lambda;
      }
  }
}

// DARE's fused kernel: bits_delta gives the bits of delta_only + unpack_mask_words + weigh,
// from f32 and from bf16, with signed zeros, infinities and NaNs among the deltas; and
// bits_to_mask unpacks any length.
TEST(GtaKernels, DareBitKernelsEqualTheirFloatMaskSteps) {
  std::mt19937_64 rng(13);
  std::uniform_real_distribution<float> u(0.0f, 1.0f), v(-2.0f, 2.0f);
  const size_t n = 1024, words = n / 64;
  std::vector<float> uni(n), mask(n), x(n), b(n), e_want(n), e_got(n), e16(n), back(n);
  std::vector<uint16_t> xh(n);
  std::vector<uint64_t> got_bits(words);
  for (size_t i = 0; i < n; ++i) {
    uni[i] = u(rng);
    xh[i] = static_cast<uint16_t>(std::bit_cast<uint32_t>(v(rng)) >> 16);
    if (i % 97 == 0) xh[i] = 0x7f80;  // +Inf
    if (i % 89 == 0) xh[i] = 0xffc0;  // NaN
    if (i % 83 == 0) xh[i] = 0x8000;  // -0
    x[i] = load_bf16(xh[i]);
    b[i] = i % 5 == 0 ? x[i] : v(rng);  // some zero deltas
  }
  for (float p : {0.0f, 0.3f, 0.5f, 1.0f}) {
    for (size_t i = 0; i < n; ++i) mask[i] = uni[i] < p ? 1.0f : 0.0f;
    pack_mask_words(mask.data(), words, got_bits.data());
    for (size_t len : {n, n - 7, size_t{5}}) {
      std::fill(back.begin(), back.end(), -1.0f);
      bits_to_mask(got_bits.data(), len, back.data());
      for (size_t i = 0; i < n; ++i) ASSERT_EQ(back[i], i < len ? mask[i] : -1.0f) << p << " " << len << " " << i;
    }
    for (float s : {1.0f, 1.7f})
      for (float w : {0.5f, -1.25f}) {
        delta_only(x.data(), b.data(), n, e_want.data());
        weigh(e_want.data(), mask.data(), s, w, n);
        bits_delta(x.data(), b.data(), got_bits.data(), n, s, w, e_got.data());
        bits_delta(xh.data(), b.data(), got_bits.data(), n, s, w, e16.data());
        ASSERT_EQ(0, std::memcmp(e_want.data(), e_got.data(), n * 4)) << p << " " << s << " " << w;
        ASSERT_EQ(0, std::memcmp(e_want.data(), e16.data(), n * 4)) << p << " " << s << " " << w;
      }
  }
}

}  // namespace
}  // namespace amalgam::mdetail
