#include "exec/chunking.h"

#include <algorithm>

namespace amalgam {

uint64_t shape_numel(const std::vector<int64_t>& shape) {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d < 0 ? 0 : d);
  return n;
}

uint64_t chunk_size_for(uint64_t requested, uint64_t block) {
  if (block == 0) block = 1;
  if (requested < block) return block;
  return (requested + block - 1) / block * block;
}

std::vector<ChunkRange> split_chunks(uint64_t numel, uint64_t chunk) {
  std::vector<ChunkRange> out;
  if (chunk == 0) chunk = 1;
  out.reserve(numel / chunk + 1);
  for (uint64_t b = 0; b < numel; b += chunk) out.push_back({b, std::min(chunk, numel - b)});
  return out;
}

bool rectified_ok(const std::vector<int64_t>& job_shape, const std::vector<int64_t>& stored_shape) {
  if (shape_numel(job_shape) == shape_numel(stored_shape)) return true;
  return job_shape.size() == 2 && stored_shape.size() == 2 && stored_shape[0] >= job_shape[0] &&
         stored_shape[1] >= job_shape[1];
}

void read_segments(const std::vector<int64_t>& job_shape, const std::vector<int64_t>& stored_shape,
                   uint64_t begin, uint64_t count, std::vector<ReadSegment>& out) {
  out.clear();
  if (count == 0) return;
  const bool same = shape_numel(job_shape) == shape_numel(stored_shape);
  const uint64_t cols = same ? 0 : static_cast<uint64_t>(job_shape[1]);
  const uint64_t stored_cols = same ? 0 : static_cast<uint64_t>(stored_shape[1]);
  if (same || cols == stored_cols) {  // the first rows of a matrix are contiguous
    out.push_back({begin, count, 0});
    return;
  }
  uint64_t e = begin, end = begin + count;
  while (e < end) {
    uint64_t row = e / cols, col = e % cols;
    uint64_t n = std::min(cols - col, end - e);
    out.push_back({row * stored_cols + col, n, e - begin});
    e += n;
  }
}

}  // namespace amalgam
