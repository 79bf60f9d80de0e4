// bracket_scan: the AVX-512 kernel and the portable one against a direct count (same
// counts, same candidate set), on keys around and on the bracket's edges, with counted
// bins inside, across and beside the bracket.
#include "kernels/bracket_scan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

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

}  // namespace
}  // namespace amalgam
