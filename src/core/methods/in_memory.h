// Runs a merge method over in-memory f32 tensors, driving the TensorMerger protocol the
// way the streaming executor does: chunks aligned to reduction_block(row_length()),
// statistics passes, then the element-wise pass, on `threads` threads. Used by tests,
// the zoo demo and the optimizer (candidates merged without touching disk).
#pragma once
#include <cstdint>
#include <vector>

#include "methods/method.h"

namespace amalgam {

// inputs[i] is input i of the job (base included at job.base), job.numel() floats each.
// Throws Error(Recipe) from the method's validation, Error(Internal) on size mismatch.
std::vector<float> merge_in_memory(const MergeMethod& method, const TensorJob& job,
                                   const std::vector<std::vector<float>>& inputs,
                                   uint64_t chunk_elements = 1 << 20, int threads = 1);

}  // namespace amalgam
