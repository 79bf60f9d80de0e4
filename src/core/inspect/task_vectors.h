// Task-vector statistics for `amalgam inspect --base B`: for each model M, the task
// vector is tau_M = M - B. Per layer group (layer index from tensor names; non-layer
// tensors go to "embed" when named like an input embedding, else "other") and in total:
// the L2 norm of each tau, pairwise cosine similarity, pairwise sign-conflict rate (of the
// coordinates where both taus are non-zero, the share with opposite signs), and the
// overall conflict rate (of the coordinates where >= 2 taus are non-zero, the share where
// both signs occur, as in TIES-merging). Streamed chunk by chunk on a thread pool in
// bounded memory, accumulated in f64, reduced in a fixed order (thread-count independent).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/model_dir.h"

namespace amalgam::inspect {

struct TaskVectorOptions {
  int threads = 1;
  uint64_t chunk_elements = 1 << 20;
  std::function<void(uint64_t bytes)> progress;  // bytes read; called from workers
};

struct GroupStats {
  std::string group;  // "embed", "layer 3", "other", "total"
  int layer = -1;
  uint64_t elements = 0;
  std::vector<double> norm;                  // per model
  std::vector<std::vector<double>> cosine;   // [i][j], NaN when a norm is 0
  std::vector<std::vector<double>> conflict; // [i][j], NaN when no coordinate is non-zero in both
  double conflict_all = 0;                   // NaN when fewer than 2 models / no such coordinate
};

struct TaskVectorReport {
  std::string base;
  std::vector<std::string> models;
  std::vector<GroupStats> groups;  // embed, layer 0..L-1, other (those present)
  GroupStats total;
  std::vector<std::string> skipped;  // base tensors not in every model with the same shape
};

TaskVectorReport task_vector_stats(const ModelDir& base, const std::vector<const ModelDir*>& models,
                                   const TaskVectorOptions& options);

// Group of a tensor name: "layer N", "embed" or "other".
std::string tensor_group(const std::string& name, int* layer);

nlohmann::json to_json(const TaskVectorReport& r);
// A human table: one row per group, columns |tau_i|, cos(i,j), conflict(i,j), conflict(all).
std::string format_table(const TaskVectorReport& r);

}  // namespace amalgam::inspect
