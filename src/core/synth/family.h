// Model families that `amalgam synth` can imitate (Llama, Mistral, Qwen2, GPT-2): their
// hyper-parameters (ModelShape), the shape chosen for a requested parameter count, the
// exact tensor names/shapes Hugging Face's *ForCausalLM classes save, and config.json.
// Known real models (Qwen2-0.5B, Llama-2-7B, GPT-2 small, ...) are reproduced exactly
// when the requested size is within 15% of theirs; other sizes get a scaled-down shape.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/dtype.h"

namespace amalgam::synth {

enum class Family { Llama, Mistral, Qwen2, Gpt2 };

Family parse_family(const std::string& name);  // throws Error(Usage)
std::string family_name(Family f);             // "llama"

struct ModelShape {
  Family family = Family::Llama;
  std::string preset;  // real model imitated ("Qwen2-0.5B"), or "" when scaled
  int64_t hidden = 0;
  int64_t layers = 0;
  int64_t heads = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;  // hidden / heads, except for presets that say otherwise
  int64_t intermediate = 0;
  int64_t vocab = 0;
  int64_t max_positions = 0;
  bool tied = false;  // lm_head shares the embedding (no lm_head.weight saved)
};

// What a tensor is, which decides how its values are generated.
enum class TensorRole { Embedding, Matrix, Norm, NormBias, Bias };

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  TensorRole role;
  uint64_t numel() const;
};

// "1M", "10M", "0.5B", "3B", "125000" -> parameter count. Throws Error(Usage).
uint64_t parse_param_count(const std::string& text);

// The shape for `family` closest to `params` parameters (a real preset when one is
// within 15%). Throws Error(Usage) when `params` is below the smallest useful model.
ModelShape shape_for_size(Family family, uint64_t params);

// Tensors in the order Hugging Face writes them.
std::vector<TensorSpec> tensor_specs(const ModelShape& shape);
uint64_t parameter_count(const ModelShape& shape);

// config.json as transformers would write it for this shape and dtype.
nlohmann::json config_json(const ModelShape& shape, DType dtype);

}  // namespace amalgam::synth
