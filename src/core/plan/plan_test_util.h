// Test helper for plan/ tests: writes tiny Hugging Face-style checkpoints (config.json +
// model.safetensors through the real ShardedWriter) with llama- or gpt2-style names.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/dtype.h"
#include "io/safetensors_writer.h"

namespace amalgam::plan_test {

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  DType dtype = DType::F32;
};

// llama names: embed, per layer q_proj/up_proj/input_layernorm, norm, optional lm_head.
inline std::vector<TensorSpec> llama_tensors(int layers, int vocab, int hidden, bool lm_head,
                                             DType dt = DType::F32) {
  std::vector<TensorSpec> t = {{"model.embed_tokens.weight", {vocab, hidden}, dt}};
  for (int i = 0; i < layers; ++i) {
    std::string p = "model.layers." + std::to_string(i) + ".";
    t.push_back({p + "self_attn.q_proj.weight", {hidden, hidden}, dt});
    t.push_back({p + "mlp.up_proj.weight", {2 * hidden, hidden}, dt});
    t.push_back({p + "input_layernorm.weight", {hidden}, dt});
  }
  t.push_back({"model.norm.weight", {hidden}, dt});
  if (lm_head) t.push_back({"lm_head.weight", {vocab, hidden}, dt});
  return t;
}

inline nlohmann::json llama_config(int layers, int vocab, int hidden) {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"model_type", "llama"},
          {"num_hidden_layers", layers},
          {"vocab_size", vocab},
          {"hidden_size", hidden},
          {"torch_dtype", "float32"},
          {"tie_word_embeddings", false}};
}

inline std::filesystem::path scratch_root() {
  return std::filesystem::path(testing::TempDir()) /
         ("amalgam_plan_test_" + std::to_string(::getpid()));
}

// Removes the scratch checkpoints when the test program ends.
class ScratchCleanup : public testing::Environment {
 public:
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(scratch_root(), ec);
  }
};

// Writes the checkpoint under a fresh directory and returns its path.
inline std::string write_model(const std::string& name, const std::vector<TensorSpec>& tensors,
                               const nlohmann::json& config) {
  namespace fs = std::filesystem;
  fs::path dir = scratch_root() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::vector<OutputTensor> out;
  for (const auto& t : tensors) out.push_back({t.name, t.dtype, t.shape});
  ShardedWriter w(dir.string(), out, 1ULL << 40);
  for (size_t i = 0; i < tensors.size(); ++i) {
    uint64_t n = 1;
    for (int64_t d : tensors[i].shape) n *= d;
    std::vector<uint8_t> bytes(n * dtype_size(tensors[i].dtype), 0);
    for (size_t b = 0; b < bytes.size(); ++b) bytes[b] = static_cast<uint8_t>((b * 7 + i) % 61);
    if (tensors[i].dtype == DType::F32) {
      // Finite, non-zero floats so that methods validating their inputs accept them.
      std::vector<float> f(n);
      for (uint64_t k = 0; k < n; ++k) f[k] = 0.01f * static_cast<float>((k + i) % 17) - 0.05f;
      std::memcpy(bytes.data(), f.data(), bytes.size());
    } else {
      for (size_t b = 1; b < bytes.size(); b += 2) bytes[b] = 0x3c;  // ~1.0 in f16/bf16 range
    }
    w.write(i, 0, bytes.data(), bytes.size());
  }
  w.finish();
  std::ofstream(dir / "config.json") << config.dump(2);
  return dir.string();
}

}  // namespace amalgam::plan_test
