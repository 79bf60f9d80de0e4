// The zoo's models as ordinary Hugging Face Llama directories: config.json
// (LlamaForCausalLM), model.safetensors written through ShardedWriter, a tokenizer.json
// whose vocabulary is the 128 ASCII bytes (token id = byte value, GPT-2 byte-level
// spelling, no merges), tokenizer_config.json and generation_config.json. Newline (id 10)
// ends every answer, so it is the EOS token. Internal to zoo/ (includes torch).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "torch/eval/causal_lm.h"

namespace amalgam::zoo {

constexpr int64_t kZooVocab = 128;
constexpr int64_t kNewlineId = 10;

struct ModelShape {
  int64_t hidden = 128, layers = 4, heads = 4, intermediate = 344, context = 64;
  nlohmann::json to_json() const;
};

nlohmann::json llama_config_json(const ModelShape& shape);
ModelConfig model_config(const ModelShape& shape);
std::string byte_tokenizer_json();

// HF Llama initialisation: normal(0, 0.02) matrices, ones for RMSNorm weights; drawn from
// torch's generator, which the caller seeds.
WeightMap init_weights(const ModelShape& shape);

// Text <-> ids of the byte vocabulary (what tokenizer.json encodes; bytes >= 128 never
// occur in zoo text and map to '?').
std::vector<int64_t> encode_bytes(const std::string& text);
std::string decode_bytes(const std::vector<int64_t>& ids);

// Writes a complete model directory into `dir` (created; must not exist), f32 tensors,
// plus `extra_files` (name -> contents), e.g. the zoo's training record.
void write_model_dir(const std::string& dir, const ModelShape& shape, const WeightMap& weights,
                     const std::vector<std::pair<std::string, std::string>>& extra_files);

}  // namespace amalgam::zoo
