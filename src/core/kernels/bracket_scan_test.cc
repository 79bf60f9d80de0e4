// bracket_scan: the AVX-512 kernel and the portable one against a direct count (same
// counts, same candidate set), on keys around and on the bracket's edges, with counted
// bins inside, across and beside the bracket; and the bf16 forms on bf16 deltas.
#include "kernels/bracket_scan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/convert.h"
#include "kernels/radix_select.h"

namespace amalgam {
namespace {

struct Scan {
  BracketCounts counts;
  std::vector<uint64_t> cand;
};

Scan direct(const std::vector<uint32_t>& keys, const Bracket& br, uint64_t first) {
  const uint32_t lo = br.lo, hi = br.hi;
  Scan s;
  for (size_t i = 0; i < keys.size(); ++i) {
    const uint32_t k = keys[i];
    if (k > hi) ++s.counts.above;
    if (k < lo || k > hi) continue;
    const uint32_t o = (k >> 16) - br.eq_bin;
    if ((k >> 16) >= br.eq_bin && o < kBracketWindow && br.slot[o] != kNoSlot)
      ++((k & 0xffffu) == 0 ? s.counts.equal : s.counts.frac)[br.slot[o]];
    else
      s.cand.push_back((static_cast<uint64_t>(0x7fffffffu - k) << 32) | (first + i));
  }
  return s;
}

void expect_same(const Scan& want, BracketCounts got, std::vector<uint64_t> cand, const char* what) {
  EXPECT_EQ(got.above, want.counts.above) << what;
  for (uint32_t j = 0; j < kBracketBins; ++j) {
    EXPECT_EQ(got.equal[j], want.counts.equal[j]) << what << " bin " << j;
    EXPECT_EQ(got.frac[j], want.counts.frac[j]) << what << " bin " << j;
  }
  std::sort(cand.begin(), cand.end());
  std::vector<uint64_t> w = want.cand;
  std::sort(w.begin(), w.end());
  EXPECT_EQ(cand, w) << what;
}

TEST(BracketScan, KernelsAgreeWithADirectCount) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 60; ++trial) {
    const size_t n = 1 + rng() % 5000;
    const bool bottom = trial % 5 == 0;  // from the bottom, zeros left out
    const uint32_t lo_bin = bottom ? 0 : 0x3a00 + rng() % 8, bins = 1 + rng() % (kBracketWindow + 8);
    // Counted bins: anywhere from below the bracket to its top.
    const uint32_t eq_bin = lo_bin + rng() % bins - (lo_bin > 0 ? rng() % 2 : 0);
    const uint32_t lo = bottom ? 1 : lo_bin << 16;
    const uint32_t hi = ((lo_bin + bins - 1) << 16) | 0xffffu;
    std::vector<float> x(n), b(n);
    std::vector<uint32_t> keys(n);
    for (size_t i = 0; i < n; ++i) {
      // Keys below, inside (round and not) and above the bracket, and zeros.
      uint32_t k;
      switch (rng() % 5) {
        case 0: k = 0; break;
        case 1: k = ((lo_bin + rng() % bins) << 16); break;
        case 2: k = ((lo_bin + rng() % bins) << 16) | (1 + rng() % 0xffff); break;
        case 3: k = ((lo_bin + bins + rng() % 4) << 16) | (rng() & 0xffff); break;
        default: k = bottom ? 0 : ((lo_bin - 1 - rng() % 4) << 16) | (rng() & 0xffff); break;
      }
      keys[i] = k;
      // x - b = +-key exactly: b = 0.
      float v;
      std::memcpy(&v, &k, 4);
      x[i] = (rng() & 1) ? v : -v;
      b[i] = 0.0f;
    }
    const uint64_t first = rng() % 100000;
    Bracket br;
    br.lo = lo;
    br.hi = hi;
    br.eq_bin = eq_bin;
    br.dense = trial % 2 == 1;
    // Up to kBracketBins slots on random bins of the window.
    for (uint32_t j = 0; j < kBracketBins; ++j)
      if (rng() % 3 != 0) br.slot[rng() % kBracketWindow] = j;
    for (uint32_t o = 0; o < kBracketWindow; ++o)  // a slot names one bin only
      for (uint32_t q = 0; q < o; ++q)
        if (br.slot[q] == br.slot[o]) br.slot[o] = kNoSlot;
    const Scan want = direct(keys, br, first);
    std::vector<uint64_t> out(n + kBracketScanSlack);
    {
      BracketCounts c;
      size_t kept = bracket_scan_keys(keys.data(), n, br, first, out.data(), &c);
      expect_same(want, c, {out.begin(), out.begin() + static_cast<std::ptrdiff_t>(kept)}, "keys");
    }
    {
      BracketCounts c;
      size_t kept = bracket_scan_delta(x.data(), b.data(), n, br, first, out.data(), &c);
      expect_same(want, c, {out.begin(), out.begin() + static_cast<std::ptrdiff_t>(kept)}, "delta");
    }
    {
      BracketCounts c;
      size_t kept = bracket_scan_keys_portable(keys.data(), n, br, first, out.data(), &c);
      expect_same(want, c, {out.begin(), out.begin() + static_cast<std::ptrdiff_t>(kept)}, "keys portable");
    }
    {
      BracketCounts c;
      size_t kept = bracket_scan_delta_portable(x.data(), b.data(), n, br, first, out.data(), &c);
      expect_same(want, c, {out.begin(), out.begin() + static_cast<std::ptrdiff_t>(kept)}, "delta portable");
    }
  }
}

// The bf16 forms (keys of x - b widened from bf16 bits in registers) against the direct
// count of the same keys, and delta_histogram_hi's bf16 form against its f32 form.
TEST(BracketScan, Bf16DeltasAgreeWithADirectCount) {
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int trial = 0; trial < 40; ++trial) {
    const size_t n = 1 + rng() % 5000;
    std::vector<uint16_t> x(n), b(n);
    std::vector<float> xf(n), bf(n);
    std::vector<uint32_t> keys(n);
    for (size_t i = 0; i < n; ++i) {
      const float base = nd(rng);
      b[i] = f32_to_bf16(base);
      x[i] = (rng() % 7 == 0) ? b[i] : f32_to_bf16(base + 0.02f * nd(rng));  // some zero deltas
      xf[i] = bf16_to_f32(x[i]);
      bf[i] = bf16_to_f32(b[i]);
      keys[i] = abs_key(xf[i] - bf[i]);
    }
    std::vector<uint32_t> sorted = keys;
    std::sort(sorted.begin(), sorted.end());
    // A bracket between two quantiles, with counted bins at its bottom.
    Bracket br;
    br.lo = std::max<uint32_t>(1, sorted[n / 3]);
    br.hi = std::max(br.lo, sorted[(2 * n) / 3]);
    br.eq_bin = br.lo >> 16;
    br.dense = trial % 2 == 1;
    for (uint32_t j = 0; j < kBracketBins; ++j) br.slot[j] = j;
    const uint64_t first = rng() % 100000;
    const Scan want = direct(keys, br, first);
    std::vector<uint64_t> out(n + kBracketScanSlack);
    {
      BracketCounts c;
      size_t kept = bracket_scan_delta(x.data(), b.data(), n, br, first, out.data(), &c);
      expect_same(want, c, {out.begin(), out.begin() + static_cast<std::ptrdiff_t>(kept)}, "bf16");
    }
    {
      BracketCounts c;
      size_t kept = bracket_scan_delta_portable(x.data(), b.data(), n, br, first, out.data(), &c);
      expect_same(want, c, {out.begin(), out.begin() + static_cast<std::ptrdiff_t>(kept)}, "bf16 portable");
    }
    std::vector<uint64_t> h16(4 * 32768), h32(4 * 32768);
    delta_histogram_hi(x.data(), b.data(), n, h16.data());
    delta_histogram_hi(xf.data(), bf.data(), n, h32.data());
    // The four interleaved tables are summed by their reader: compare the sums.
    for (size_t k = 0; k < 32768; ++k)
      ASSERT_EQ(h16[k] + h16[32768 + k] + h16[65536 + k] + h16[98304 + k],
                h32[k] + h32[32768 + k] + h32[65536 + k] + h32[98304 + k])
          << "bin " << k;
  }
}

}  // namespace
}  // namespace amalgam
