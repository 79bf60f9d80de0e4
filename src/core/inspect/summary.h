// What `amalgam inspect` says about one model directory (architecture, parameter and
// tensor counts, dtypes, shards, bytes), and the compatibility of several models with
// a reference (missing/extra tensors, shape and dtype mismatches, vocabulary sizes).
// Compatible means a merge can line every tensor up: same names and shapes, same
// vocabulary; differing dtypes are reported but do not make models incompatible.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/model_dir.h"

namespace amalgam::inspect {

struct ModelSummary {
  std::string ref, path;
  std::string architecture;  // config.json architectures[0], or "" if unknown
  std::string model_type;
  uint64_t params = 0, tensors = 0, shards = 0;
  uint64_t tensor_bytes = 0;  // tensor data
  uint64_t file_bytes = 0;    // safetensors files on disk, headers included
  int layers = 0;             // distinct layer indices in tensor names
  std::optional<int64_t> vocab_size;  // config.json vocab_size
  std::map<std::string, uint64_t> dtype_tensors, dtype_params;  // by safetensors dtype name
};

ModelSummary summarize(const ModelDir& model);
nlohmann::json to_json(const ModelSummary& s);

struct Mismatch {
  std::string tensor, reference, other;  // "[896, 4864]" or "BF16"
};

struct CompatEntry {
  std::string ref;
  std::vector<std::string> missing;  // in the reference, absent here
  std::vector<std::string> extra;    // here, absent from the reference
  std::vector<Mismatch> shape, dtype;
  std::optional<int64_t> vocab_size;
  bool vocab_matches = true;
  bool compatible() const { return missing.empty() && extra.empty() && shape.empty() && vocab_matches; }
};

struct CompatReport {
  std::string reference;
  std::optional<int64_t> reference_vocab;
  std::vector<CompatEntry> models;  // every model but the reference
  bool compatible() const;
};

// models[0] is the reference. Needs at least two models.
CompatReport check_compatibility(const std::vector<const ModelDir*>& models);
nlohmann::json to_json(const CompatReport& r);

std::string shape_string(const std::vector<int64_t>& shape);

}  // namespace amalgam::inspect
