#include "kernels/vqsort_seed.h"
#include "methods/gta_kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace amalgam {
namespace {

// DELLA's row ranks (hwy::Sorter) must take their pivot seeds from vqsort_seed.cc (no
// system call per sort), and still rank exactly.
TEST(VqsortSeed, RowRanksUseTheSeedWithoutASystemCall) {
  if (!vqsort_seed_replaced()) GTEST_SKIP() << "this Highway version seeds its own way";
  std::mt19937 rng(7);
  std::vector<uint32_t> keys(5000);
  for (auto& k : keys) k = rng() & 0x7fffffffu;
  std::vector<uint32_t> order(keys.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return keys[a] < keys[b]; });
  const uint64_t before = vqsort_seed_calls();
  std::vector<uint32_t> rank(keys.size());
  mdetail::RankScratch scratch;
  mdetail::rank_keys(keys.data(), keys.size(), rank.data(), scratch);
  EXPECT_GT(vqsort_seed_calls(), before);
  for (uint32_t r = 0; r < order.size(); ++r) ASSERT_EQ(rank[order[r]], r);
}

}  // namespace
}  // namespace amalgam
