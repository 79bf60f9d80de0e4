// Decoder-only language models of the families amalgam evaluates, as a *functional*
// forward: weights are passed in as a map of Hugging Face tensor names to torch tensors,
// so the zoo can train them (tensors with requires_grad), the optimizer can
// differentiate through merge coefficients, and a merge held in memory is evaluated
// without being written. Supported: LlamaForCausalLM, MistralForCausalLM,
// Qwen2ForCausalLM, GPT2LMHeadModel.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace amalgam {

class ModelDir;

enum class Architecture { Llama, Mistral, Qwen2, GPT2 };

struct ModelConfig {
  Architecture arch = Architecture::Llama;
  int64_t vocab_size = 0, hidden_size = 0, num_layers = 0, num_heads = 0, num_kv_heads = 0;
  int64_t intermediate_size = 0, max_position_embeddings = 2048, head_dim = 0;
  double rope_theta = 10000.0, rms_norm_eps = 1e-6, layer_norm_eps = 1e-5;
  nlohmann::json rope_scaling;  // null or the config's object (llama3, linear, dynamic)
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // Qwen2: true for q/k/v
  std::optional<int64_t> sliding_window;
  std::optional<int64_t> bos_token_id, eos_token_id, pad_token_id;
  std::string hidden_act = "silu";  // Llama family MLP activation; GPT-2: gelu_new

  int64_t kv_heads() const { return num_kv_heads > 0 ? num_kv_heads : num_heads; }
  int64_t dim_per_head() const { return head_dim > 0 ? head_dim : hidden_size / num_heads; }

  // Throws Error(Input) listing the supported architectures for an unknown one.
  static ModelConfig from_json(const nlohmann::json& config, const std::string& label);
};

using WeightMap = std::unordered_map<std::string, torch::Tensor>;

// Per-layer key/value cache for incremental decoding.
struct KVCache {
  std::vector<torch::Tensor> keys, values;  // per layer [B, kv_heads, T, head_dim]
  torch::Tensor mask;                       // [B, T] attention mask of the cached tokens
  int64_t length() const;
};

// Loads every tensor of a model directory, converted to `dtype` (f32 or bf16).
WeightMap load_weights(const ModelDir& model, torch::Dtype dtype);

// For inference only: stores each Llama-family layer's q/k/v projections (weights and
// biases) and gate/up projections as one tensor, under the extra names
// "<layer>.self_attn.qkv_proj.*" and "<layer>.mlp.gate_up_proj.weight", and re-points the
// original names at row slices of it (no extra memory). `forward` then runs one matmul
// where it ran three (or two). Not for weights that will be trained: the slices are views.
void fuse_projections(const ModelConfig& config, WeightMap& weights);

// input_ids [B, T] (int64), attention_mask [B, T] (1 = real token, 0 = padding; left or
// right padding). Returns logits [B, T, vocab] in f32. With `cache`, input_ids are the
// new tokens only and the cache is extended; attention_mask then covers either the new
// tokens only or the cached plus the new tokens. Position ids are cumsum(mask) - 1, so a
// left-padded row sees the same positions as the unpadded one. Logits at padding
// positions are finite but meaningless.
torch::Tensor forward(const ModelConfig& config, const WeightMap& weights,
                      const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                      KVCache* cache = nullptr);

// Greedy decoding of one prompt batch until a stop string, EOS or max_new_tokens.
// Returns the generated ids per row (prompt excluded).
std::vector<std::vector<int64_t>> generate_greedy(const ModelConfig& config,
                                                  const WeightMap& weights,
                                                  const std::vector<std::vector<int64_t>>& prompts,
                                                  int64_t max_new_tokens,
                                                  std::optional<int64_t> eos_id);

// Same, batched with left padding and a KV cache; `should_stop(row, generated)` is asked
// after each new token (e.g. to look for a stop string) and ends that row when true.
using StopPredicate = std::function<bool(size_t row, const std::vector<int64_t>& generated)>;
std::vector<std::vector<int64_t>> generate_greedy(const ModelConfig& config,
                                                  const WeightMap& weights,
                                                  const std::vector<std::vector<int64_t>>& prompts,
                                                  int64_t max_new_tokens,
                                                  std::optional<int64_t> eos_id,
                                                  const StopPredicate& should_stop);

// Final hidden states [B, T, hidden] (after the last norm) in the weights' dtype, and the
// output projection they feed: lets scoring apply the vocabulary matmul only where needed.
torch::Tensor forward_hidden(const ModelConfig& config, const WeightMap& weights,
                             const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                             KVCache* cache = nullptr);
const torch::Tensor& output_embedding(const ModelConfig& config, const WeightMap& weights);

// torch's intra-op threads (and OpenBLAS's own pool) = `threads`; warns once when the
// BLAS behind torch is not OpenBLAS (the reference BLAS is 20-45x slower).
void configure_torch_threads(int threads);

}  // namespace amalgam
