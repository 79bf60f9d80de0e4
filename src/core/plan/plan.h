// MergePlan: the fully resolved merge. One entry per output tensor = method + input
// tensor references + parameters resolved for that tensor (layer gradients, filters,
// precedence, defaults). Built from a Recipe and the opened models before anything is
// written, so every input problem (missing tensor, shape mismatch, bad parameter) is
// reported first; it knows all sizes, so it prints a dry run and a memory estimate.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/dtype.h"
#include "io/model_dir.h"
#include "methods/method.h"
#include "recipe/recipe.h"

namespace amalgam {

// Opens each model reference once and keeps it open for the plan's lifetime.
class ModelSet {
 public:
  size_t index_of(const std::string& ref);  // opens on first use; throws Error(Input)
  const ModelDir& at(size_t index) const { return *models_[index]; }
  size_t size() const { return models_.size(); }

 private:
  std::vector<std::unique_ptr<ModelDir>> models_;
  std::vector<std::string> refs_;
};

// Embedding rows re-mapped to the output vocabulary (METHODS.md §4 step 4), shared by
// the inputs of one job: row i of input j is that input's stored row own[j][i], else the
// fallback fallback_of[i]: the mean of the listed (input, stored row) rows, zeros when
// none. Axis 0 is the vocabulary; the rest of the shape is the job's.
struct RowRemap {
  struct Stored {
    size_t model = 0;
    std::string tensor;
  };
  struct Fallback {
    std::vector<std::pair<uint32_t, int64_t>> from;
  };
  std::vector<Stored> stored;  // per job input
  int64_t rows = 0;            // the output vocabulary (before pad_to_multiple_of)
  std::vector<std::vector<int32_t>> own;
  std::vector<int32_t> fallback_of;  // empty: no row needs one
  std::vector<Fallback> fallbacks;
  uint64_t bytes() const { return own.size() * rows * 4 + fallback_of.size() * 4 + fallbacks.size() * 40; }
};

// How one input of a job is read: model `model`, stored tensor `tensor`. When the stored
// shape is larger than the job shape (embedding rectification, METHODS.md §3), the job
// reads the top-left [rows, cols] sub-matrix.
struct InputRef {
  size_t model = 0;
  std::string tensor;
  std::vector<int64_t> stored_shape;
  DType dtype = DType::F32;
  // tokenizer.pad_to_multiple_of (METHODS.md §4 step 4): the job's rows from this one on
  // are padding, each the mean of this input's rows [0, real_rows). -1: no padding.
  int64_t real_rows = -1;
  // Re-mapped embedding rows (tokenizer source with differing vocabularies): this input
  // is remap->stored[remap_input]; `tensor` and `stored_shape` describe that tensor.
  std::shared_ptr<const RowRemap> remap;
  int remap_input = -1;
};

struct PlannedTensor {
  const MergeMethod* method = nullptr;
  TensorJob job;                 // name, shape, labels, base, params
  std::vector<InputRef> inputs;  // aligned with job.input_labels
  DType out_dtype = DType::F32;
  // Round inputs to this dtype first (recipe `dtype:`), as mergekit does at load time.
  std::optional<DType> load_dtype;
};

struct MergePlan {
  std::vector<PlannedTensor> tensors;   // output order
  size_t config_donor = 0;              // model whose config.json / tokenizer is copied
  nlohmann::json output_config;         // config.json to write (dtype, layer count updated)
  std::optional<size_t> tokenizer_donor;  // nullopt: no tokenizer files copied
  // Tokenizer files written instead of the donor's (the output vocabulary differs).
  std::map<std::string, std::string> tokenizer_files;
  // tokenizer_source / tokenizer: {source, tokens, appended, remapped}; null when unset
  // or when no model has a tokenizer file (rows are then taken as stored).
  nlohmann::json vocabulary;
  std::vector<std::string> warnings;    // one line each, reported once
  uint64_t input_bytes() const;         // bytes read (sum over jobs' inputs)
  uint64_t output_bytes() const;
};

struct PlanOptions {
  uint64_t seed = 0;
  bool allow_crimes = false;
};

MergePlan make_plan(const Recipe& recipe, ModelSet& models, const PlanOptions& options);

// Layer index of a tensor name (first `.<digits>.` after layers/h/blocks/layer), or -1.
int layer_index(const std::string& tensor_name);

}  // namespace amalgam
