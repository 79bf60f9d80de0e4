// Writes synthetic checkpoints: OUT_DIR/base and OUT_DIR/expert_1..N, each a Hugging
// Face directory (config.json, generation_config.json, safetensors
// shards) of the chosen family and size. Values are generated chunk by chunk straight
// into ShardedWriter, so memory stays at threads x chunk whatever the model size, and
// the bytes depend only on the options (never on threads or chunk size). The output is
// built in a temporary directory beside OUT_DIR and renamed into place at the end.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/dtype.h"
#include "io/file_env.h"
#include "synth/family.h"

namespace amalgam::synth {

struct SynthOptions {
  Family family = Family::Llama;
  uint64_t params = 1000000;  // requested parameter count
  DType dtype = DType::BF16;  // BF16, F16 or F32
  int experts = 2;
  uint64_t seed = 0;
  uint64_t max_shard_bytes = 5000000000ULL;
  int threads = 1;
  uint64_t chunk_elements = 1 << 20;
  bool force = false;  // replace a non-empty OUT_DIR
  FileEnv* env = nullptr;  // nullptr: posix
  // Called from worker threads (must be thread-safe) with bytes just written.
  std::function<void(uint64_t bytes)> progress;
};

struct SynthPlan {
  ModelShape shape;
  uint64_t params = 0;           // per model
  uint64_t tensors = 0;          // per model
  uint64_t bytes_per_model = 0;  // tensor data bytes
  uint64_t shards_per_model = 0;
  std::vector<std::string> models;  // "base", "expert_1", ...
  uint64_t total_bytes() const { return bytes_per_model * models.size(); }
};

// Validates options and works out shapes and sizes; writes nothing.
SynthPlan plan_synth(const SynthOptions& options);
// Writes the checkpoints; returns the plan it carried out. Throws Error.
SynthPlan write_synth(const std::string& out_dir, const SynthOptions& options);

nlohmann::json plan_json(const SynthPlan& plan, const SynthOptions& options);

}  // namespace amalgam::synth
