#include "plan/output_config.h"

#include <fmt/format.h>

namespace amalgam {
namespace {

// Per-layer lists (layer_types: sliding vs full attention in Qwen3, Gemma 2/3, ...)
// follow the layers: slice k's entries come from its reference model.
void restack_layer_types(nlohmann::json& cfg, const std::vector<OutputLayers>& layers,
                         std::vector<std::string>& warnings) {
  if (!cfg.contains("layer_types") || !cfg["layer_types"].is_array()) return;
  nlohmann::json out = nlohmann::json::array();
  for (const OutputLayers& s : layers) {
    const nlohmann::json& rc = *s.config;
    if (!rc.is_object() || !rc.contains("layer_types") || !rc["layer_types"].is_array() ||
        rc["layer_types"].size() < static_cast<size_t>(s.begin + s.length)) {
      warnings.push_back(fmt::format(
          "config.json: layer_types left as the donor's ('{}' has no matching layer_types)",
          s.ref));
      return;
    }
    for (int k = 0; k < s.length; ++k) out.push_back(rc["layer_types"][s.begin + k]);
  }
  cfg["layer_types"] = std::move(out);
}

}  // namespace

nlohmann::json make_output_config(const OutputConfigInputs& in,
                                  std::vector<std::string>& warnings) {
  nlohmann::json cfg = in.donor.is_object() ? in.donor : nlohmann::json::object();
  if (in.dtype && !cfg.empty()) {
    cfg["torch_dtype"] = *in.dtype;
    if (cfg.contains("dtype")) cfg["dtype"] = *in.dtype;  // newer transformers spell it so
  }
  if (in.slices && !cfg.empty()) {
    int total = 0;
    for (const OutputLayers& s : in.layers) total += s.length;
    bool set = false;
    for (const char* key : {"num_hidden_layers", "n_layer"}) {
      if (cfg.contains(key)) cfg[key] = total, set = true;
    }
    if (cfg.contains("text_config") && cfg["text_config"].is_object() &&
        cfg["text_config"].contains("num_hidden_layers")) {
      cfg["text_config"]["num_hidden_layers"] = total, set = true;
    }
    if (!set) cfg["num_hidden_layers"] = total;
    restack_layer_types(cfg, in.layers, warnings);
  }
  // A merged lm_head that a loader would replace by the tied embeddings: say so.
  if (in.head_written && cfg.value("tie_word_embeddings", false) == true) {
    warnings.push_back(
        "config.json has tie_word_embeddings: true, so loaders will ignore the merged "
        "lm_head.weight (the donor ties it but another model does not)");
  }
  // Embeddings cut to fewer rows than the donor's vocab_size would not load.
  if (in.embedding_rows > 0 && cfg.contains("vocab_size") &&
      cfg["vocab_size"].is_number_integer() &&
      cfg["vocab_size"].get<int64_t>() > in.embedding_rows) {
    warnings.push_back(fmt::format("config.json: vocab_size {} -> {} (embeddings rectified)",
                                   cfg["vocab_size"].get<int64_t>(), in.embedding_rows));
    cfg["vocab_size"] = in.embedding_rows;
  }
  // Padded embeddings: vocab_size is the padded row count, as mergekit writes it.
  if (in.padded_rows > 0 && cfg.is_object()) cfg["vocab_size"] = in.padded_rows;
  return cfg;
}

}  // namespace amalgam
