#include "exec/chunking.h"

#include <gtest/gtest.h>

namespace amalgam {
namespace {

TEST(Chunking, ChunkSizeRoundsUpToBlock) {
  EXPECT_EQ(chunk_size_for(1, 65536), 65536u);
  EXPECT_EQ(chunk_size_for(65536, 65536), 65536u);
  EXPECT_EQ(chunk_size_for(65537, 65536), 131072u);
  EXPECT_EQ(chunk_size_for(1 << 20, 66000), 16u * 66000u);
  EXPECT_EQ(chunk_size_for(10, 0), 10u);
}

TEST(Chunking, SplitCoversEveryElementOnce) {
  auto c = split_chunks(10, 4);
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].begin, 0u);
  EXPECT_EQ(c[1].begin, 4u);
  EXPECT_EQ(c[2].begin, 8u);
  EXPECT_EQ(c[2].count, 2u);
  EXPECT_TRUE(split_chunks(0, 4).empty());
  EXPECT_EQ(split_chunks(8, 4).size(), 2u);
}

TEST(Chunking, SameShapeIsOneSegment) {
  std::vector<ReadSegment> s;
  read_segments({4, 8}, {4, 8}, 5, 20, s);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].stored_first, 5u);
  EXPECT_EQ(s[0].count, 20u);
  EXPECT_EQ(s[0].dst, 0u);
}

TEST(Chunking, RectifiedRowsOnlyIsContiguous) {
  std::vector<ReadSegment> s;
  read_segments({3, 8}, {5, 8}, 0, 24, s);  // fewer rows, same width: a prefix
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].count, 24u);
}

TEST(Chunking, RectifiedTopLeftReadsRowByRow) {
  // Job [2, 3] out of stored [4, 5]: job element (r, c) lives at stored r*5 + c.
  std::vector<ReadSegment> s;
  read_segments({2, 3}, {4, 5}, 1, 4, s);  // elements 1..4 = (0,1) (0,2) (1,0) (1,1)
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].stored_first, 1u);
  EXPECT_EQ(s[0].count, 2u);
  EXPECT_EQ(s[0].dst, 0u);
  EXPECT_EQ(s[1].stored_first, 5u);
  EXPECT_EQ(s[1].count, 2u);
  EXPECT_EQ(s[1].dst, 2u);
  // Every job element maps to the right stored element.
  std::vector<uint64_t> mapped(6, 999);
  read_segments({2, 3}, {4, 5}, 0, 6, s);
  for (auto& seg : s)
    for (uint64_t k = 0; k < seg.count; ++k) mapped[seg.dst + k] = seg.stored_first + k;
  EXPECT_EQ(mapped, (std::vector<uint64_t>{0, 1, 2, 5, 6, 7}));
}

TEST(Chunking, RectifiedOk) {
  EXPECT_TRUE(rectified_ok({4, 8}, {4, 8}));
  EXPECT_TRUE(rectified_ok({32}, {4, 8}));  // same numel: a reshape
  EXPECT_TRUE(rectified_ok({3, 8}, {5, 9}));
  EXPECT_FALSE(rectified_ok({6, 8}, {5, 9}));
  EXPECT_FALSE(rectified_ok({3, 8}, {40}));
}

}  // namespace
}  // namespace amalgam
