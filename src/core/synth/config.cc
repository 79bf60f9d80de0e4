// config.json for synthetic checkpoints, with the keys transformers writes for each
// family (so Hugging Face loaders and amalgam's eval read them like the real thing).
#include "synth/family.h"

namespace amalgam::synth {

namespace {

const char* kTransformersVersion = "4.44.0";

// Reduced vocabularies cannot hold the real special-token ids; use the last id instead.
int64_t special_id(const ModelShape& s, int64_t real_id) {
  return real_id < s.vocab ? real_id : s.vocab - 1;
}

nlohmann::json llama_like(const ModelShape& s, DType dtype) {
  nlohmann::json c;
  const bool llama3 = s.preset.rfind("Llama-3", 0) == 0;
  switch (s.family) {
    case Family::Llama: c["architectures"] = {"LlamaForCausalLM"}; break;
    case Family::Mistral: c["architectures"] = {"MistralForCausalLM"}; break;
    default: c["architectures"] = {"Qwen2ForCausalLM"}; break;
  }
  c["attention_dropout"] = 0.0;
  if (s.family == Family::Qwen2) {
    c["bos_token_id"] = special_id(s, 151643);
    c["eos_token_id"] = special_id(s, 151643);
  } else if (llama3) {
    c["bos_token_id"] = 128000;
    c["eos_token_id"] = 128001;
  } else {
    c["bos_token_id"] = 1;
    c["eos_token_id"] = 2;
  }
  c["hidden_act"] = "silu";
  c["hidden_size"] = s.hidden;
  c["initializer_range"] = 0.02;
  c["intermediate_size"] = s.intermediate;
  c["max_position_embeddings"] = s.max_positions;
  c["model_type"] = family_name(s.family);
  c["num_attention_heads"] = s.heads;
  c["num_hidden_layers"] = s.layers;
  c["num_key_value_heads"] = s.kv_heads;
  c["rms_norm_eps"] = s.family == Family::Qwen2 ? 1e-6 : 1e-5;
  c["tie_word_embeddings"] = s.tied;
  c["torch_dtype"] = std::string(torch_dtype_name(dtype));
  c["transformers_version"] = kTransformersVersion;
  c["use_cache"] = true;
  c["vocab_size"] = s.vocab;
  switch (s.family) {
    case Family::Llama:
      c["attention_bias"] = false;
      c["head_dim"] = s.head_dim;
      c["mlp_bias"] = false;
      c["pretraining_tp"] = 1;
      if (llama3) {
        c["rope_theta"] = 500000.0;
        c["rope_scaling"] = {{"factor", 32.0},
                             {"high_freq_factor", 4.0},
                             {"low_freq_factor", 1.0},
                             {"original_max_position_embeddings", 8192},
                             {"rope_type", "llama3"}};
      } else {
        c["rope_theta"] = 10000.0;
        c["rope_scaling"] = nullptr;
      }
      break;
    case Family::Mistral:
      c["rope_theta"] = 10000.0;
      c["sliding_window"] = 4096;
      break;
    default:
      c["max_window_layers"] = s.layers;
      c["rope_theta"] = 1000000.0;
      c["sliding_window"] = s.max_positions;
      c["use_sliding_window"] = false;
      break;
  }
  return c;
}

nlohmann::json gpt2(const ModelShape& s, DType dtype) {
  nlohmann::json c;
  c["activation_function"] = "gelu_new";
  c["architectures"] = {"GPT2LMHeadModel"};
  c["attn_pdrop"] = 0.1;
  c["bos_token_id"] = special_id(s, 50256);
  c["embd_pdrop"] = 0.1;
  c["eos_token_id"] = special_id(s, 50256);
  c["initializer_range"] = 0.02;
  c["layer_norm_epsilon"] = 1e-5;
  c["model_type"] = "gpt2";
  c["n_ctx"] = s.max_positions;
  c["n_embd"] = s.hidden;
  c["n_head"] = s.heads;
  c["n_inner"] = s.intermediate == 4 * s.hidden ? nlohmann::json(nullptr)
                                                : nlohmann::json(s.intermediate);
  c["n_layer"] = s.layers;
  c["n_positions"] = s.max_positions;
  c["reorder_and_upcast_attn"] = false;
  c["resid_pdrop"] = 0.1;
  c["scale_attn_by_inverse_layer_idx"] = false;
  c["scale_attn_weights"] = true;
  c["summary_activation"] = nullptr;
  c["summary_first_dropout"] = 0.1;
  c["summary_proj_to_labels"] = true;
  c["summary_type"] = "cls_index";
  c["summary_use_proj"] = true;
  c["torch_dtype"] = std::string(torch_dtype_name(dtype));
  c["transformers_version"] = kTransformersVersion;
  c["use_cache"] = true;
  c["vocab_size"] = s.vocab;
  return c;
}

}  // namespace

nlohmann::json config_json(const ModelShape& shape, DType dtype) {
  return shape.family == Family::Gpt2 ? gpt2(shape, dtype) : llama_like(shape, dtype);
}

}  // namespace amalgam::synth
