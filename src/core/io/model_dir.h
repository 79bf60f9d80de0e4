// A Hugging Face model directory: config.json, one or more safetensors files (single,
// or sharded through model.safetensors.index.json), tokenizer and generation config
// files. Resolves `org/name` through the local Hugging Face cache. Tensors are looked
// up by name across shards. pytorch_model.bin checkpoints are refused with a hint.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/safetensors_reader.h"

namespace amalgam {

struct TensorRef {
  const SafetensorsFile* file;
  const TensorInfo* info;
};

class ModelDir {
 public:
  // `ref` is a directory path, or `org/name` (optionally `org/name@revision`) found in
  // the local Hugging Face cache. Throws Error(Input) naming the path.
  static std::unique_ptr<ModelDir> open(const std::string& ref);

  const std::string& ref() const { return ref_; }    // as given by the user
  const std::string& path() const { return path_; }  // resolved directory
  const nlohmann::json& config() const { return config_; }  // {} if no config.json
  bool has_config() const { return has_config_; }

  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
  // All tensor names in a stable order (index order if sharded, else file order).
  const std::vector<std::string>& tensor_names() const { return names_; }
  std::optional<TensorRef> find(const std::string& name) const;
  TensorRef get(const std::string& name) const;  // throws Error(Input) naming model + tensor

  uint64_t parameter_count() const;
  uint64_t tensor_bytes() const;
  // Tokenizer-related files present in the directory (tokenizer.json,
  // tokenizer_config.json, special_tokens_map.json, tokenizer.model, vocab.json,
  // merges.txt, added_tokens.json, chat_template.jinja ...), and generation_config.json.
  std::vector<std::string> tokenizer_files() const;
  std::optional<std::string> generation_config_file() const;

 private:
  std::string ref_, path_;
  nlohmann::json config_;
  bool has_config_ = false;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::vector<std::string> names_;
  std::vector<std::pair<std::string, TensorRef>> index_;  // sorted by name
};

// Resolves `org/name[@rev]` in $HF_HUB_CACHE, else $HF_HOME/hub, else
// ~/.cache/huggingface/hub (refs/<rev or main> -> snapshots/<hash>). nullopt if absent.
std::optional<std::string> resolve_hf_cache(const std::string& repo_id);

}  // namespace amalgam
