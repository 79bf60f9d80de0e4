// How the executor cuts one tensor into chunks and where a chunk's elements live in a
// stored input. Chunks are whole multiples of the merger's reduction block, so results
// never depend on the chunk size (methods/method.h). A rectified input (stored shape
// larger than the job shape, METHODS.md §3) is read as the top-left rows x cols block.
#pragma once
#include <cstdint>
#include <vector>

namespace amalgam {

struct ChunkRange {
  uint64_t begin = 0;
  uint64_t count = 0;
};

// Elements per chunk: `requested` rounded up to a multiple of `block` (block >= 1).
uint64_t chunk_size_for(uint64_t requested, uint64_t block);
// [0, numel) cut into chunks of `chunk` elements (the last may be shorter). numel 0 -> none.
std::vector<ChunkRange> split_chunks(uint64_t numel, uint64_t chunk);

// A run of consecutive stored elements that lands at `dst` (element offset in the chunk).
struct ReadSegment {
  uint64_t stored_first = 0;
  uint64_t count = 0;
  uint64_t dst = 0;
};
// Segments covering job elements [begin, begin+count) of a tensor of shape `job_shape`
// stored with shape `stored_shape`. Same element count: one segment. Otherwise both must
// be 2-D with stored dims >= job dims (the caller checks; see rectified_ok). Appends to
// `out` after clearing it.
void read_segments(const std::vector<int64_t>& job_shape, const std::vector<int64_t>& stored_shape,
                   uint64_t begin, uint64_t count, std::vector<ReadSegment>& out);
// True if a stored tensor can present itself in `job_shape` (equal numel, or 2-D top-left).
bool rectified_ok(const std::vector<int64_t>& job_shape, const std::vector<int64_t>& stored_shape);

uint64_t shape_numel(const std::vector<int64_t>& shape);

}  // namespace amalgam
