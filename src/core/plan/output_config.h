// The output config.json (METHODS.md §1.2): the donor's config with torch_dtype set to
// the recipe's out_dtype/dtype, and for slices: the layer count and per-layer lists
// (layer_types) restacked to follow the written layers; vocab_size follows rectified
// embeddings. Problems a loader would hit are reported as warnings.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace amalgam {

struct OutputLayers {
  const nlohmann::json* config;  // config of the slice's reference model (not owned)
  std::string ref;               // that model's reference, for messages
  int begin = 0, length = 0;     // input layers [begin, begin + length)
};

struct OutputConfigInputs {
  nlohmann::json donor;              // the donor's config.json ({} if none)
  std::optional<std::string> dtype;  // out_dtype, else dtype
  bool slices = false;               // slices: form (layer count is rewritten)
  std::vector<OutputLayers> layers;  // one per output slice
  int64_t embedding_rows = 0;        // rows of rectified embeddings, 0 if none
  int64_t padded_rows = 0;           // rows after tokenizer.pad_to_multiple_of, 0 if not set
  bool head_written = false;         // an lm_head tensor is written
};

nlohmann::json make_output_config(const OutputConfigInputs& in, std::vector<std::string>& warnings);

}  // namespace amalgam
