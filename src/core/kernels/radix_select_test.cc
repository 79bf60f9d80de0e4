// TopSelector (streaming radix select) against std::nth_element / a full sort, on random
// f32 keys, bf16-like keys (the threshold bin is the key, many ties) and all-equal keys,
// with the data visited in shuffled block order as the executor may do.
#include "kernels/radix_select.h"

#include "methods/method.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace amalgam {
namespace {

// The selected set a resolved selector gives, applied block by block as the methods do.
std::vector<uint8_t> applied_selection(const TopSelector& sel, const std::vector<uint32_t>& keys, uint64_t block) {
  const uint64_t n = keys.size(), blocks = (n + block - 1) / block;
  std::vector<uint8_t> selected(n);
  std::vector<float> mask(block);
  for (uint64_t b = 0; b < blocks; ++b) {
    uint64_t rank = sel.equal_before(b);
    const uint64_t first = b * block, cnt = std::min(block, n - first);
    apply_top_cut(sel.cut(), first, keys.data() + first, cnt, &rank, mask.data());
    for (uint64_t i = 0; i < cnt; ++i) selected[first + i] = mask[i] != 0.0f;
  }
  return selected;
}

// Selected set by (key desc, index asc), computed by the streaming selector.
std::vector<uint8_t> select_streaming(const std::vector<uint32_t>& keys, uint64_t m, uint64_t block,
                                      bool zero_neutral, std::mt19937& rng, TopCut* cut_out = nullptr,
                                      bool fallback = false, bool histogram = true) {
  const uint64_t n = keys.size();
  const uint64_t blocks = (n + block - 1) / block;
  TopSelector sel(n, m, blocks, zero_neutral, false);
  if (histogram) sel.set_small_limit(0);  // the data here is small: force the big-tensor path
  if (fallback) sel.set_max_candidates(0);
  std::vector<uint64_t> order(blocks);
  std::iota(order.begin(), order.end(), 0);
  while (sel.stage() != TopSelector::kDone) {
    std::shuffle(order.begin(), order.end(), rng);
    for (uint64_t b : order) {
      TopSelector::Local local;
      uint64_t first = b * block, cnt = std::min(block, n - first);
      sel.observe(local, b, first, keys.data() + first, cnt);
      sel.commit(local);
    }
    sel.finish_pass();
  }
  if (cut_out) *cut_out = sel.cut();
  return applied_selection(sel, keys, block);
}

std::vector<uint8_t> select_reference(const std::vector<uint32_t>& keys, uint64_t m) {
  std::vector<uint64_t> idx(keys.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](uint64_t a, uint64_t b) {
    return keys[a] != keys[b] ? keys[a] > keys[b] : a < b;
  });
  std::vector<uint8_t> sel(keys.size());
  for (uint64_t i = 0; i < m; ++i) sel[idx[i]] = 1;
  return sel;
}

// Bracketed selection: a sample (pieces spread over the keys, as the executor takes it),
// then passes until done. Returns the selected set; *passes gets the passes taken.
std::vector<uint8_t> select_bracketed(const std::vector<uint32_t>& keys, const std::vector<uint32_t>& sample_from,
                                      uint64_t m, uint64_t block, bool zero_neutral, std::mt19937& rng,
                                      int* passes, uint64_t max_candidates = TopSelector::kMaxCandidates,
                                      uint64_t cap_after_sample = 0) {
  const uint64_t n = keys.size();
  const uint64_t blocks = (n + block - 1) / block;
  TopSelector sel(n, m, blocks, zero_neutral, false);
  sel.set_small_limit(0);
  sel.set_max_candidates(max_candidates);
  sel.enable_bracket();
  if (const uint64_t want = sel.bracket_sample_size()) {
    for (const auto& [begin, count] : sample_pieces(n, want)) sel.sample(sample_from.data() + begin, count);
  }
  sel.end_sample();
  if (cap_after_sample) sel.set_max_candidates(cap_after_sample);  // a sample that underestimated
  std::vector<uint64_t> order(blocks);
  std::iota(order.begin(), order.end(), 0);
  *passes = 0;
  while (sel.stage() != TopSelector::kDone) {
    std::shuffle(order.begin(), order.end(), rng);
    for (uint64_t b : order) {
      TopSelector::Local local;
      const uint64_t first = b * block, cnt = std::min(block, n - first);
      // Tiles of at most 1024 keys, as the methods feed them.
      for (uint64_t t = 0; t < cnt; t += 1024)
        sel.observe(local, b, first + t, keys.data() + first + t, std::min<uint64_t>(1024, cnt - t));
      sel.commit(local);
    }
    sel.finish_pass();
    ++*passes;
  }
  return applied_selection(sel, keys, block);
}

// The selected set with zeros that are neutral: any zero may be in or out.
void expect_same_selection(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want,
                           const std::vector<uint32_t>& keys, bool zero_neutral, const std::string& what) {
  size_t differ = 0;
  for (size_t i = 0; i < keys.size(); ++i)
    if (got[i] != want[i] && !(zero_neutral && keys[i] == 0)) ++differ;
  EXPECT_EQ(differ, 0u) << what;
}

// Breadcrumbs' two cuts over the same keys, driven as methods/gta.cc drives them: the drop
// cut follows the keep cut's histograms while both are in their histogram pass. Blocks in
// shuffled order when rng is given. Returns the passes taken.
int run_two_cuts(TopSelector& keep, TopSelector& drop, const std::vector<uint32_t>& keys, uint64_t block,
                 std::mt19937* rng = nullptr) {
  const uint64_t n = keys.size(), blocks = (n + block - 1) / block;
  std::vector<uint64_t> order(blocks);
  std::iota(order.begin(), order.end(), 0);
  int passes = 0;
  while (keep.stage() != TopSelector::kDone || drop.stage() != TopSelector::kDone) {
    const bool shared = keep.stage() == TopSelector::kHi && drop.stage() == TopSelector::kHi;
    if (rng) std::shuffle(order.begin(), order.end(), *rng);
    for (uint64_t b : order) {
      TopSelector::Local lk, ld;
      const uint64_t first = b * block, cnt = std::min(block, n - first);
      if (keep.stage() != TopSelector::kDone) keep.observe(lk, b, first, keys.data() + first, cnt);
      if (!shared && drop.stage() != TopSelector::kDone) drop.observe(ld, b, first, keys.data() + first, cnt);
      keep.commit(lk);
      drop.commit(ld);
    }
    if (shared) drop.share_histogram_from(keep);
    keep.finish_pass();
    drop.finish_pass();
    ++passes;
  }
  return passes;
}

TEST(RadixSelect, BracketDecidesInOnePass) {
  std::mt19937 rng(11);
  const uint64_t n = 400000;
  std::normal_distribution<float> nd(0, 1);
  for (int kind = 0; kind < 4; ++kind) {
    // 0: continuous keys; 1: bf16-like (many ties); 2: a few bf16 ulps (heavy ties, as
    // task vectors of bf16 fine-tunes); 3: 70 % zeros, zeros neutral.
    std::vector<uint32_t> keys(n);
    for (auto& k : keys) {
      k = abs_key(nd(rng));
      if (kind == 1) k &= 0xffff0000u;
      if (kind == 2) k = abs_key(static_cast<float>(rng() % 6) * 0x1p-11f);
      if (kind == 3 && rng() % 10 < 7) k = 0;
    }
    const bool zero_neutral = kind == 3;
    for (double f : {0.005, 0.05, 0.3, 0.5, 0.8, 0.995}) {
      const uint64_t m = static_cast<uint64_t>(f * static_cast<double>(n));
      const uint64_t misses = TopSelector::bracket_misses();
      int passes = 0;
      auto got = select_bracketed(keys, keys, m, 65536, zero_neutral, rng, &passes);
      const std::string what = "kind " + std::to_string(kind) + " f " + std::to_string(f);
      expect_same_selection(got, select_reference(keys, m), keys, zero_neutral, what);
      EXPECT_EQ(passes, 1) << what;
      EXPECT_EQ(TopSelector::bracket_misses(), misses) << what;
    }
  }
}

TEST(RadixSelect, BracketThatMissesFallsBackExactly) {
  std::mt19937 rng(12);
  const uint64_t n = 300000;
  std::normal_distribution<float> nd(0, 1);
  std::vector<uint32_t> keys(n), shifted(n);
  for (uint64_t i = 0; i < n; ++i) {
    keys[i] = abs_key(nd(rng));
    shifted[i] = abs_key(4.0f * nd(rng));  // a sample unlike the data: the bracket misses
  }
  for (bool bf16 : {false, true}) {
    std::vector<uint32_t> data = keys;
    if (bf16)
      for (auto& k : data) k &= 0xffff0000u;
    for (uint64_t m : {n / 10, n / 2}) {
      const uint64_t misses = TopSelector::bracket_misses();
      int passes = 0;
      auto got = select_bracketed(data, shifted, m, 65536, false, rng, &passes);
      EXPECT_EQ(got, select_reference(data, m)) << "m " << m;
      EXPECT_GT(passes, 1);
      EXPECT_EQ(TopSelector::bracket_misses(), misses + 1);
    }
  }
  // More candidates than the cap (continuous keys: all candidates; the cap lowered after
  // the bracket was chosen, as if the sample had underestimated them). Abandoned, exact.
  const uint64_t misses = TopSelector::bracket_misses();
  int passes = 0;
  auto got = select_bracketed(keys, keys, n / 2, 65536, false, rng, &passes, TopSelector::kMaxCandidates, 100);
  EXPECT_EQ(got, select_reference(keys, n / 2));
  EXPECT_GT(passes, 1);
  EXPECT_EQ(TopSelector::bracket_misses(), misses + 1);
}

// Breadcrumbs' two cuts over the same keys, as methods/gta.cc drives them: the drop cut
// follows the keep cut's histograms while both are in their histogram pass. Here the keep
// cut cannot bracket (no sample) and the drop cut's bracket misses: the leader's window
// counts from the first pass must not add to the follower's own in the second.
TEST(RadixSelect, FollowerWhoseBracketMissedCountsItsOwnWindow) {
  std::mt19937 rng(13);
  const uint64_t n = 300000, block = 65536, blocks = (n + block - 1) / block;
  std::vector<uint32_t> keys(n), shifted(n);
  std::normal_distribution<float> nd(0, 1);
  for (uint64_t i = 0; i < n; ++i) {
    keys[i] = abs_key(static_cast<float>(static_cast<int>(8 * std::fabs(nd(rng)))) * 0.125f);  // many ties
    shifted[i] = abs_key(8.0f * nd(rng));
  }
  const uint64_t m_keep = n * 9 / 10, m_drop = n / 50;
  TopSelector keep(n, m_keep, blocks, true, false), drop(n, m_drop, blocks, true, false);
  keep.set_small_limit(0);
  drop.set_small_limit(0);
  drop.follow(keep);
  drop.enable_bracket();
  for (const auto& [begin, count] : sample_pieces(n, drop.bracket_sample_size())) drop.sample(shifted.data() + begin, count);
  drop.end_sample();
  ASSERT_EQ(drop.stage(), TopSelector::kBracket);
  const uint64_t misses = TopSelector::bracket_misses();
  run_two_cuts(keep, drop, keys, block);
  EXPECT_EQ(TopSelector::bracket_misses(), misses + 1);
  for (auto [sel, m] : {std::pair<TopSelector*, uint64_t>{&keep, m_keep}, {&drop, m_drop}}) {
    expect_same_selection(applied_selection(*sel, keys, block), select_reference(keys, m), keys, true, "m " + std::to_string(m));
  }
}

// A counted bin's keys with low bits are counted, not kept: when the m-th key is one of
// them, one candidate pass over that bin follows. Exact either way.
TEST(RadixSelect, BracketCountedBinWithLowBitsTakesACandidatePass) {
  std::mt19937 rng(14);
  const uint64_t n = 300000;
  std::vector<uint32_t> keys(n, abs_key(0.5f));
  for (auto& k : keys)
    if (rng() % 10 == 0) k |= 1 + rng() % 0xffff;  // a tenth above 0.5, inside its bin
  for (uint64_t m : {n / 20, n / 2}) {
    const uint64_t misses = TopSelector::bracket_misses();
    int passes = 0;
    auto got = select_bracketed(keys, keys, m, 65536, false, rng, &passes);
    EXPECT_EQ(got, select_reference(keys, m)) << "m " << m;
    EXPECT_EQ(passes, m == n / 20 ? 2 : 1) << "m " << m;
    EXPECT_EQ(TopSelector::bracket_misses(), misses);
  }
}

TEST(RadixSelect, ThresholdEqualsNthElement) {
  std::mt19937 rng(1);
  for (int trial = 0; trial < 40; ++trial) {
    const size_t n = 1 + rng() % 50000;
    std::vector<uint32_t> keys(n);
    std::normal_distribution<float> nd(0, 1);
    const bool bf16 = trial % 2;
    for (auto& k : keys) {
      k = abs_key(nd(rng));
      if (bf16) k &= 0xffff0000u;
    }
    const uint64_t m = 1 + rng() % n;
    TopCut cut;
    select_streaming(keys, m, 4096, false, rng, &cut, trial % 4 == 1, trial % 4 != 3);
    std::vector<uint32_t> copy = keys;
    std::nth_element(copy.begin(), copy.begin() + (m - 1), copy.end(), std::greater<>());
    if (m < n) {
      EXPECT_EQ(cut.threshold, copy[m - 1]) << "n=" << n << " m=" << m;
    }
  }
}

TEST(RadixSelect, SelectedSetBreaksTiesByLowerIndex) {
  std::mt19937 rng(2);
  for (int trial = 0; trial < 60; ++trial) {
    const size_t n = 1 + rng() % 30000;
    std::vector<uint32_t> keys(n);
    const int kind = trial % 4;
    std::normal_distribution<float> nd(0, 1);
    for (auto& k : keys) {
      if (kind == 0) k = abs_key(nd(rng));
      if (kind == 1) k = abs_key(nd(rng)) & 0xfff00000u;  // few distinct values: heavy ties
      if (kind == 2) k = abs_key(static_cast<float>(rng() % 3));  // including zeros
      // Heavy ties with a few keys just above a tied value in the same high bin (the
      // task vectors of bf16 checkpoints look like this).
      if (kind == 3) k = (abs_key(nd(rng)) & 0xfff00000u) | (rng() % 50 == 0 ? 1 + rng() % 0xffff : 0);
    }
    const uint64_t m = rng() % (n + 1);
    const uint64_t block = 1 + rng() % 5000;
    auto want = select_reference(keys, m);
    for (bool fallback : {false, true}) {
      auto got = select_streaming(keys, m, block, false, rng, nullptr, fallback);
      ASSERT_EQ(got, want) << "trial " << trial << " n=" << n << " m=" << m << " fallback " << fallback;
    }
    auto small = select_streaming(keys, m, block, false, rng, nullptr, false, false);
    ASSERT_EQ(small, want) << "trial " << trial << " n=" << n << " m=" << m << " small-tensor path";
    auto got = select_streaming(keys, m, block, false, rng);
    EXPECT_EQ(std::accumulate(got.begin(), got.end(), uint64_t{0}), m);
  }
}

TEST(RadixSelect, FollowerDecidesFromTheLeadersPass) {
  // breadcrumbs: two cuts over the same keys, histogrammed once by the leader. With
  // bf16-like keys both decide in that one pass (the follower from its own window
  // counts), and both select exactly the reference sets.
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0, 1);
  const uint64_t n = 200000, block = 65536, blocks = (n + block - 1) / block;
  std::vector<uint32_t> keys(n);
  for (auto& k : keys) k = abs_key(nd(rng)) & 0xfff00000u;
  const uint64_t m_keep = 150000, m_drop = 2000;
  TopSelector keep(n, m_keep, blocks, false, false), drop(n, m_drop, blocks, false, false);
  drop.follow(keep);
  for (uint64_t b = 0; b < blocks; ++b) {
    TopSelector::Local l;
    const uint64_t first = b * block, cnt = std::min(block, n - first);
    keep.observe(l, b, first, keys.data() + first, cnt);
    keep.commit(l);
  }
  drop.share_histogram_from(keep);
  keep.finish_pass();
  drop.finish_pass();
  ASSERT_EQ(keep.stage(), TopSelector::kDone);
  ASSERT_EQ(drop.stage(), TopSelector::kDone);
  for (auto [sel, m] : {std::pair<TopSelector*, uint64_t>{&keep, m_keep}, {&drop, m_drop}}) {
    EXPECT_EQ(applied_selection(*sel, keys, block), select_reference(keys, m)) << "m=" << m;
  }
}

// Breadcrumbs' cuts with window samples, as methods/gta.cc drives them: keys like bf16
// task vectors (a quarter zeros, a long tail of small magnitudes), small blocks visited
// in shuffled order. Both cuts decide in one window scan over the windows the sample
// placed. A sample unlike the data (both windows miss, then the histogram pass) or window
// counts over their budget (a counting pass) cost a second pass; exact every time.
TEST(RadixSelect, WindowSamplePlacesBothCutsWindows) {
  std::mt19937 rng(15);
  const uint64_t n = 400000, block = 4096, blocks = (n + block - 1) / block;
  std::vector<uint32_t> keys(n), shifted(n);
  std::normal_distribution<float> nd(0, 1);
  for (uint64_t i = 0; i < n; ++i) {
    const float v = rng() % 4 == 0 ? 0.0f : nd(rng) * std::exp2(static_cast<float>(rng() % 24) - 20.0f);
    keys[i] = abs_key(v) & 0xffff0000u;
    shifted[i] = abs_key(64.0f * nd(rng)) & 0xffff0000u;
  }
  struct Case {
    const std::vector<uint32_t>* sample;
    uint64_t budget;
    int passes;  // expected
  };
  for (const Case& c : {Case{&keys, ~uint64_t{0}, 1}, Case{&shifted, ~uint64_t{0}, 2}, Case{&keys, 64, 2}}) {
    const uint64_t m_keep = n * 91 / 100, m_drop = n / 100;
    TopSelector keep(n, m_keep, blocks, false, false), drop(n, m_drop, blocks, false, false);
    for (TopSelector* s : {&keep, &drop}) {
      s->set_small_limit(0);
      s->set_window_budget(c.budget);
      s->enable_window_sample();
    }
    drop.follow(keep);
    const uint64_t want = std::max(keep.bracket_sample_size(), drop.bracket_sample_size());
    ASSERT_GT(want, 0u);
    for (const auto& [begin, count] : sample_pieces(n, want)) {
      keep.sample(c.sample->data() + begin, count);
      drop.sample(c.sample->data() + begin, count);
    }
    keep.end_sample();
    drop.end_sample();
    ASSERT_EQ(keep.stage(), TopSelector::kWindow);
    ASSERT_EQ(drop.stage(), TopSelector::kWindow);
    const uint64_t misses = TopSelector::bracket_misses();
    const int passes = run_two_cuts(keep, drop, keys, block, &rng);
    const std::string what = std::string(c.sample == &keys ? "own sample" : "unlike sample") +
                             " budget " + std::to_string(c.budget);
    EXPECT_EQ(passes, c.passes) << what;
    EXPECT_EQ(TopSelector::bracket_misses() - misses, c.sample == &keys ? 0u : 2u) << what;
    for (auto [sel, m] : {std::pair<TopSelector*, uint64_t>{&keep, m_keep}, {&drop, m_drop}})
      EXPECT_EQ(applied_selection(*sel, keys, block), select_reference(keys, m)) << what << " m " << m;
  }
}

// TIES asks for both: the sample picks a window for keys that are mostly their bin's
// value, a bracket for continuous keys; one pass and the exact set either way.
TEST(RadixSelect, SampleChoosesWindowOrBracket) {
  std::mt19937 rng(16);
  const uint64_t n = 300000, block = 65536, blocks = (n + block - 1) / block;
  std::normal_distribution<float> nd(0, 1);
  for (bool round : {true, false}) {
    std::vector<uint32_t> keys(n);
    for (auto& k : keys) k = abs_key(nd(rng)) & (round ? 0xffff0000u : 0xffffffffu);
    const uint64_t m = n / 2;
    TopSelector sel(n, m, blocks, true, false);
    sel.set_small_limit(0);
    sel.enable_bracket();
    sel.enable_window_sample();
    // As the executor takes it: again while more is wanted (continuous keys: the
    // window's sample asks for the bracket's).
    int rounds = 0;
    for (uint64_t want; (want = sel.bracket_sample_size()) > 0 && rounds < kMaxSampleRounds; ++rounds) {
      for (const auto& [begin, count] : sample_pieces(n, want)) sel.sample(keys.data() + begin, count);
      sel.end_sample();
    }
    EXPECT_EQ(rounds, round ? 1 : 2);
    EXPECT_EQ(sel.stage(), round ? TopSelector::kWindow : TopSelector::kBracket);
    int passes = 0;
    while (sel.stage() != TopSelector::kDone) {
      for (uint64_t b = 0; b < blocks; ++b) {
        TopSelector::Local l;
        const uint64_t first = b * block, cnt = std::min(block, n - first);
        sel.observe(l, b, first, keys.data() + first, cnt);
        sel.commit(l);
      }
      sel.finish_pass();
      ++passes;
    }
    EXPECT_EQ(passes, 1) << round;
    EXPECT_EQ(applied_selection(sel, keys, block), select_reference(keys, m)) << round;
  }
}

TEST(RadixSelect, AllEqualKeysSelectTheFirstM) {
  std::mt19937 rng(3);
  std::vector<uint32_t> keys(10000, abs_key(0.5f));
  for (bool fallback : {false, true}) {
    auto got = select_streaming(keys, 1234, 777, false, rng, nullptr, fallback);
    for (size_t i = 0; i < keys.size(); ++i) ASSERT_EQ(got[i], i < 1234 ? 1 : 0);
  }
}

TEST(RadixSelect, PassCounts) {
  // Keys with zero low bits (bf16-sourced): the first pass finds T, and the window counts
  // give the ranks among equal keys: one pass in all.
  std::vector<uint32_t> keys(1000);
  for (size_t i = 0; i < keys.size(); ++i) keys[i] = abs_key(static_cast<float>(i % 10));
  for (bool fallback : {false, true}) {
    TopSelector sel(keys.size(), 150, 1, false, false);
    sel.set_small_limit(0);
    if (fallback) sel.set_max_candidates(0);
    EXPECT_EQ(sel.passes_left(), 3);
    int passes = 0;
    while (sel.stage() != TopSelector::kDone) {
      TopSelector::Local l;
      sel.observe(l, 0, 0, keys.data(), keys.size());
      sel.commit(l);
      sel.finish_pass();
      ++passes;
    }
    EXPECT_EQ(passes, 1);
    EXPECT_EQ(sel.cut().threshold, abs_key(8.0f));
    EXPECT_EQ(sel.cut().need, 50u);
    EXPECT_EQ(sel.cut().ties, TopCut::ByRank);
    EXPECT_EQ(sel.equal_before(0), 0u);
  }
  // A small tensor (the default limit): one pass collecting every key; the cut among
  // equal keys is by index.
  {
    TopSelector sel(keys.size(), 150, 1, false, false);
    EXPECT_EQ(sel.passes_left(), 1);
    TopSelector::Local l;
    sel.observe(l, 0, 0, keys.data(), keys.size());
    sel.commit(l);
    sel.finish_pass();
    EXPECT_EQ(sel.stage(), TopSelector::kDone);
    EXPECT_EQ(sel.cut().threshold, abs_key(8.0f));
    EXPECT_EQ(sel.cut().ties, TopCut::ByIndex);
    EXPECT_EQ(sel.cut().cut_index, 498u);  // the 50th 8.0 sits at index 8 + 49 * 10
  }
  // The first committed chunk is unlike the rest (all small keys): its window misses the
  // threshold bin, so a second pass counts the keys == T per block. Still exact.
  {
    std::vector<uint32_t> skewed(4000);
    for (size_t i = 0; i < skewed.size(); ++i)
      skewed[i] = abs_key(i < 1000 ? 0.001f * static_cast<float>(1 + i % 7) : static_cast<float>(i % 10));
    TopSelector sel(skewed.size(), 100, 4, false, false);
    sel.set_small_limit(0);
    int passes = 0;
    while (sel.stage() != TopSelector::kDone) {
      for (uint64_t b = 0; b < 4; ++b) {
        TopSelector::Local l;
        sel.observe(l, b, b * 1000, skewed.data() + b * 1000, 1000);
        sel.commit(l);
      }
      sel.finish_pass();
      ++passes;
    }
    EXPECT_EQ(passes, 2);
    EXPECT_EQ(sel.cut().threshold, abs_key(9.0f));
    EXPECT_EQ(sel.cut().ties, TopCut::ByRank);
    EXPECT_EQ(sel.equal_before(3), 200u);  // blocks 1 and 2 hold 100 nines each
  }
  // Distinct keys that all fit: one histogram pass + one candidate pass.
  std::vector<uint32_t> distinct(5000);
  for (size_t i = 0; i < distinct.size(); ++i) distinct[i] = abs_key(1.0f + i * 1e-4f);
  TopSelector sel(distinct.size(), 100, 1, false, false);
  sel.set_small_limit(0);
  int passes = 0;
  while (sel.stage() != TopSelector::kDone) {
    TopSelector::Local l;
    sel.observe(l, 0, 0, distinct.data(), distinct.size());
    sel.commit(l);
    sel.finish_pass();
    ++passes;
  }
  EXPECT_EQ(passes, 2);
  EXPECT_EQ(sel.cut().threshold, distinct[4900]);
}

}  // namespace
}  // namespace amalgam
