// DELLA's per-row rank lookups: rank_lookup_rows (several rows per sort) gives exactly
// the per-row rank_lookup results, ties by lower position, for any row length.
#include "methods/gta_kernels.h"

#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace amalgam::mdetail {
namespace {

TEST(GtaKernels, RankLookupRowsEqualsOneRowAtATime) {
  std::mt19937_64 rng(11);
  for (size_t C : {size_t{1}, size_t{2}, size_t{7}, size_t{64}, size_t{896}, size_t{4864}, size_t{70000}}) {
    const size_t rows = C >= 70000 ? 2 : 37;
    std::vector<uint32_t> keys(rows * C);
    // Few distinct keys (many ties) in some rows, full 31-bit keys in others.
    for (size_t r = 0; r < rows; ++r)
      for (size_t i = 0; i < C; ++i)
        keys[r * C + i] = r % 3 == 0 ? static_cast<uint32_t>(rng() % 5) : static_cast<uint32_t>(rng() & 0x7fffffffu);
    std::vector<float> table(C);
    for (size_t q = 0; q < C; ++q) table[q] = static_cast<float>(q) + 0.5f;
    std::vector<float> want(rows * C), got(rows * C, -1.0f);
    RankScratch s;
    for (size_t r = 0; r < rows; ++r) rank_lookup(keys.data() + r * C, C, table.data(), want.data() + r * C, 1, s);
    rank_lookup_rows(keys.data(), rows, C, table.data(), got.data(), s);
    ASSERT_EQ(got, want) << "C=" << C;
  }
}

}  // namespace
}  // namespace amalgam::mdetail
