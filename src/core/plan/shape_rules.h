// METHODS.md §3 as one pure function: given the stored shapes of a tensor's inputs, the
// job's shape and which inputs take part. Vocabulary matrices are rectified (cut to a
// common top-left sub-matrix, the base's shape for task-arithmetic methods, or the
// tokenizer source's rows); task-arithmetic methods drop a mismatching non-base model;
// anything else that differs is an Error(Input) naming the tensor and the shapes.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace amalgam {

struct ShapeInput {
  const std::vector<int64_t>* shape;  // stored shape (not owned)
  std::string label;                  // model reference, for messages
};

struct ShapeDecision {
  std::vector<int64_t> shape;  // the job's shape; inputs are read as its top-left part
  std::vector<bool> keep;      // per input: false = left out of this tensor
  std::string rectified;       // non-empty: the warning line for a rectification
};

// `base`: index of the base among `inputs` (-1: none). `vocab_rows`: rows required by
// tokenizer_source (embeddings only). Methods named in is_gta_method() use their rule.
ShapeDecision reconcile_shapes(const std::string& tensor, const std::string& method,
                               const std::vector<ShapeInput>& inputs, int base, bool embedding,
                               std::optional<int64_t> vocab_rows);

// The generalized task-arithmetic family (task_arithmetic, ties, dare_*, breadcrumbs*,
// della*), which has its own shape rule in mergekit.
bool is_gta_method(const std::string& method);

std::string shape_str(const std::vector<int64_t>& shape);  // "[2, 3]"

}  // namespace amalgam
