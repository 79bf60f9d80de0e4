// The streaming executor: runs a MergePlan chunk by chunk on a thread pool in bounded
// memory (threads x chunk x (inputs + 1) floats, whatever the model size), writes the
// output through ShardedWriter into a temporary directory beside OUT_DIR, and renames
// it into place at the end. A failure or interruption leaves nothing at OUT_DIR.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "io/file_env.h"
#include "plan/plan.h"
#include "recipe/recipe.h"

namespace amalgam {

struct ExecOptions {
  int threads = 1;
  uint64_t chunk_elements = 1 << 20;    // rounded up to the tensor's reduction block
  uint64_t max_shard_bytes = 5000000000ULL;
  bool copy_tokenizer = true;
  bool write_model_card = true;
  bool force = false;                   // replace an existing OUT_DIR
  // fsync the output before the rename (survives a power loss). Costs the disk's write
  // time: ~2.4 s per GB of output on the benchmark machine's 0.4 GB/s disk, more than
  // the merge itself. Off by default, as in mergekit; `amalgam merge --fsync`.
  bool durable = false;
  // Multi-pass methods keep a tensor's inputs in memory between passes up to this many
  // stored bytes (exec/scheduler.h); 0 (the default) re-reads them in every pass, which
  // is faster from a warm page cache (docs/merge.md).
  uint64_t resident_bytes = 0;
  bool bf16_merge = true;               // exec/scheduler.h: tests compare both paths
  FileEnv* env = nullptr;               // nullptr: posix
  // Progress: called from one thread with (tensors done, total, bytes done, total).
  std::function<void(size_t, size_t, uint64_t, uint64_t)> progress;
};

struct ExecResult {
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
  double seconds = 0;
  std::vector<std::string> files;
  std::vector<std::string> warnings;
};

struct MemoryEstimate {
  uint64_t peak_bytes = 0;
};
MemoryEstimate estimate_memory(const MergePlan& plan, const ExecOptions& options);

ExecResult execute_plan(const MergePlan& plan, const ModelSet& models, const Recipe& recipe,
                        const std::string& out_dir, const ExecOptions& options);

}  // namespace amalgam
