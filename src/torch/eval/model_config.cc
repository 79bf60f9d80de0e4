// ModelConfig::from_json: reads a Hugging Face config.json of the supported families into
// the one config struct the functional forward uses. Field names and defaults follow the
// transformers configuration classes (LlamaConfig, MistralConfig, Qwen2Config, GPT2Config).
#include <string>

#include "torch/eval/causal_lm.h"
#include "util/error.h"

namespace amalgam {
namespace {

const char* kSupported = "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, GPT2LMHeadModel";

int64_t get_int(const nlohmann::json& j, const char* key, const std::string& label) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer())
    fail(ErrorKind::Input, "{}: config.json needs an integer '{}'", label, key);
  return it->get<int64_t>();
}

int64_t get_int_or(const nlohmann::json& j, const char* key, int64_t fallback) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : fallback;
}

double get_num_or(const nlohmann::json& j, const char* key, double fallback) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : fallback;
}

std::optional<int64_t> get_opt_id(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return std::nullopt;
  if (it->is_number_integer()) return it->get<int64_t>();
  // Llama-3 lists several EOS ids; the first is the one generation uses by default.
  if (it->is_array() && !it->empty() && (*it)[0].is_number_integer()) return (*it)[0].get<int64_t>();
  return std::nullopt;
}

std::string architecture_name(const nlohmann::json& j) {
  auto it = j.find("architectures");
  if (it != j.end() && it->is_array() && !it->empty() && (*it)[0].is_string())
    return (*it)[0].get<std::string>();
  // Older configs only carry model_type.
  std::string type = j.value("model_type", "");
  if (type == "llama") return "LlamaForCausalLM";
  if (type == "mistral") return "MistralForCausalLM";
  if (type == "qwen2") return "Qwen2ForCausalLM";
  if (type == "gpt2") return "GPT2LMHeadModel";
  return type.empty() ? "(none)" : type;
}

void check_rope_scaling(const nlohmann::json& rs, const std::string& label) {
  if (rs.is_null()) return;
  if (!rs.is_object()) fail(ErrorKind::Input, "{}: rope_scaling must be an object or null", label);
  std::string type = rs.value("rope_type", rs.value("type", std::string("default")));
  if (type == "default") return;
  if (type != "llama3" && type != "linear" && type != "dynamic")
    fail(ErrorKind::Input, "{}: rope_scaling type '{}' is not supported (default, linear, dynamic, llama3)",
         label, type);
  if (!rs.contains("factor") || !rs["factor"].is_number())
    fail(ErrorKind::Input, "{}: rope_scaling '{}' needs a numeric 'factor'", label, type);
  if (type == "llama3")
    for (const char* key : {"low_freq_factor", "high_freq_factor", "original_max_position_embeddings"})
      if (!rs.contains(key) || !rs[key].is_number())
        fail(ErrorKind::Input, "{}: rope_scaling 'llama3' needs '{}'", label, key);
}

}  // namespace

ModelConfig ModelConfig::from_json(const nlohmann::json& j, const std::string& label) {
  if (!j.is_object()) fail(ErrorKind::Input, "{}: config.json is not a JSON object", label);
  ModelConfig c;
  std::string arch = architecture_name(j);
  if (arch == "LlamaForCausalLM") c.arch = Architecture::Llama;
  else if (arch == "MistralForCausalLM") c.arch = Architecture::Mistral;
  else if (arch == "Qwen2ForCausalLM") c.arch = Architecture::Qwen2;
  else if (arch == "GPT2LMHeadModel") c.arch = Architecture::GPT2;
  else fail(ErrorKind::Input, "{}: unsupported architecture '{}' (supported: {})", label, arch, kSupported);

  c.vocab_size = get_int(j, "vocab_size", label);
  c.bos_token_id = get_opt_id(j, "bos_token_id");
  c.eos_token_id = get_opt_id(j, "eos_token_id");
  c.pad_token_id = get_opt_id(j, "pad_token_id");

  if (c.arch == Architecture::GPT2) {
    c.hidden_size = get_int(j, "n_embd", label);
    c.num_layers = get_int(j, "n_layer", label);
    c.num_heads = get_int(j, "n_head", label);
    c.num_kv_heads = c.num_heads;
    c.intermediate_size = get_int_or(j, "n_inner", 4 * c.hidden_size);
    c.max_position_embeddings = get_int_or(j, "n_positions", get_int_or(j, "n_ctx", 1024));
    c.layer_norm_eps = get_num_or(j, "layer_norm_epsilon", 1e-5);
    c.hidden_act = j.value("activation_function", std::string("gelu_new"));
    c.tie_word_embeddings = j.value("tie_word_embeddings", true);
    c.attention_bias = true;
  } else {
    c.hidden_size = get_int(j, "hidden_size", label);
    c.num_layers = get_int(j, "num_hidden_layers", label);
    c.num_heads = get_int(j, "num_attention_heads", label);
    c.num_kv_heads = get_int_or(j, "num_key_value_heads", c.num_heads);
    c.intermediate_size = get_int(j, "intermediate_size", label);
    c.max_position_embeddings = get_int_or(j, "max_position_embeddings", 2048);
    c.head_dim = get_int_or(j, "head_dim", 0);
    c.rope_theta = get_num_or(j, "rope_theta", 10000.0);
    c.rms_norm_eps = get_num_or(j, "rms_norm_eps", 1e-6);
    c.rope_scaling = j.value("rope_scaling", nlohmann::json());
    check_rope_scaling(c.rope_scaling, label);
    c.tie_word_embeddings = j.value("tie_word_embeddings", false);
    c.hidden_act = j.value("hidden_act", std::string("silu"));
    // Qwen2 always has q/k/v biases; Llama has them (and an o_proj bias) when
    // attention_bias is set. The forward uses whichever bias tensors are present.
    c.attention_bias = c.arch == Architecture::Qwen2 || j.value("attention_bias", false);
    if (c.arch == Architecture::Mistral) {
      auto sw = j.find("sliding_window");
      if (sw != j.end() && sw->is_number_integer()) c.sliding_window = sw->get<int64_t>();
    }
    // Qwen2's use_sliding_window applies only to some layers (max_window_layers); the
    // released Qwen2 checkpoints leave it off, and so do we.
  }
  if (c.num_heads <= 0 || c.hidden_size <= 0 || c.num_layers < 0 || c.vocab_size <= 0)
    fail(ErrorKind::Input, "{}: config.json has non-positive sizes", label);
  if (c.num_kv_heads <= 0 || c.num_heads % c.num_kv_heads != 0)
    fail(ErrorKind::Input, "{}: num_attention_heads ({}) is not a multiple of num_key_value_heads ({})",
         label, c.num_heads, c.num_kv_heads);
  if (c.head_dim == 0 && c.hidden_size % c.num_heads != 0)
    fail(ErrorKind::Input, "{}: hidden_size {} is not divisible by {} heads", label, c.hidden_size,
         c.num_heads);
  static const char* acts[] = {"silu", "gelu", "gelu_new", "gelu_pytorch_tanh", "relu"};
  bool known = false;
  for (const char* a : acts) known = known || c.hidden_act == a;
  if (!known) fail(ErrorKind::Input, "{}: activation '{}' is not supported", label, c.hidden_act);
  return c;
}

}  // namespace amalgam
