// DELLA's per-row rank lookups: rank_lookup_rows and rank_lookup (a packed 32-bit sort for
// rows of up to 2^14 keys, with a fallback where truncated keys collide out of order) give
// exactly the ranks of rank_keys' 64-bit sort, ties by lower position, for any row length
// and stride.
#include "methods/gta_kernels.h"

#include <random>
#include <vector>

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
    // and of such keys ascending with the position (truncated runs already in order).
    for (size_t r = 0; r < rows; ++r)
      for (size_t i = 0; i < C; ++i) {
        uint32_t& k = keys[r * C + i];
        switch (r % 4) {
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

}  // namespace
}  // namespace amalgam::mdetail
