// Runs every tensor job of a plan on a fixed pool of worker threads, chunk by chunk:
// stats passes, then the merge pass, writing each output chunk through a callback.
// Several tensors are in flight at once (a small window) so that small tensors do not
// leave threads idle; memory is per worker (chunk x (inputs + 1) floats), never per tensor.
// Output bytes do not depend on the thread count or chunk size (methods/method.h).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "plan/plan.h"

namespace amalgam {

// Multi-pass tensors (ties, breadcrumbs, della, ...) whose stored inputs fit in
// ScheduleOptions::resident_bytes keep them in memory between passes; up to threads + 1
// tensors are in flight. Off by default: since the statistics passes read bf16 inputs
// directly (TensorMerger::accumulate_bf16), re-reading a warm page cache into a small,
// cached buffer beats writing the inputs out to memory and reading them back
// (2026-12-03: ties 1.95 -> 1.66 s, dare_ties 2.2 -> 1.8 s, della 5.1 -> 4.8 s).
inline constexpr uint64_t kResidentBytes = 0;
// Output chunks that may wait for the writer thread (plus one being written).
inline constexpr uint64_t kPendingWrites = 5;

struct ScheduleOptions {
  int threads = 1;
  uint64_t chunk_elements = 1 << 16;
  uint64_t resident_bytes = kResidentBytes;  // 0: re-read the inputs in every pass
  // bf16 inputs merged to bf16 go through TensorMerger::merge_bf16 where the merger has
  // it (the same bytes; false only to compare the two paths in tests).
  bool bf16_merge = true;
  // Called from one writer thread for each finished output chunk (disjoint ranges, any
  // order): (tensor index, first element, element count, bytes in out dtype).
  std::function<void(size_t, uint64_t, uint64_t, const void*)> write;
  // Called from the calling thread every ~200 ms and once at the end.
  std::function<void(size_t tensors_done, uint64_t input_bytes_done)> progress;
};

struct ScheduleResult {
  uint64_t bytes_read = 0;             // stored input bytes, all passes
  std::vector<std::string> warnings;  // from the mergers, deduplicated
};

// Input bytes the merge pass reads for one tensor (the progress total).
uint64_t merge_input_bytes(const PlannedTensor& t);

// Throws the first Error a worker hit (non-finite output, bad input), or Error(Io)
// "merge interrupted" when cancel_requested() (exec/cancel.h) became true.
ScheduleResult run_schedule(const MergePlan& plan, const ModelSet& models,
                            const ScheduleOptions& options);

}  // namespace amalgam
