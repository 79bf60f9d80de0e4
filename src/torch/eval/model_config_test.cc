// ModelConfig::from_json: family detection, defaults, and the errors a user sees.
#include <gtest/gtest.h>

#include "torch/eval/causal_lm.h"
#include "util/error.h"

namespace amalgam {
namespace {

TEST(ModelConfig, UnknownArchitectureListsSupported) {
  auto j = nlohmann::json::parse(R"({"architectures": ["FalconForCausalLM"], "vocab_size": 10})");
  try {
    ModelConfig::from_json(j, "m/config.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_EQ(e.kind(), ErrorKind::Input);
    EXPECT_NE(msg.find("m/config.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find("FalconForCausalLM"), std::string::npos) << msg;
    for (const char* a : {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "GPT2LMHeadModel"})
      EXPECT_NE(msg.find(a), std::string::npos) << msg;
  }
}

TEST(ModelConfig, LlamaDefaultsAndGqa) {
  auto j = nlohmann::json::parse(R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 128,
    "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 8, "num_key_value_heads": 2,
    "intermediate_size": 96, "rope_theta": 500000.0, "eos_token_id": [7, 9],
    "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                     "high_freq_factor": 4.0, "original_max_position_embeddings": 64}})");
  auto c = ModelConfig::from_json(j, "x");
  EXPECT_EQ(c.arch, Architecture::Llama);
  EXPECT_EQ(c.kv_heads(), 2);
  EXPECT_EQ(c.dim_per_head(), 8);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.eos_token_id, 7);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias);
}

TEST(ModelConfig, Gpt2AndQwen2) {
  auto g = ModelConfig::from_json(nlohmann::json::parse(
      R"({"architectures": ["GPT2LMHeadModel"], "vocab_size": 50, "n_embd": 32, "n_layer": 2,
          "n_head": 4, "n_positions": 64})"), "g");
  EXPECT_EQ(g.arch, Architecture::GPT2);
  EXPECT_EQ(g.intermediate_size, 128);
  EXPECT_EQ(g.hidden_act, "gelu_new");
  EXPECT_TRUE(g.tie_word_embeddings);
  auto q = ModelConfig::from_json(nlohmann::json::parse(
      R"({"model_type": "qwen2", "vocab_size": 50, "hidden_size": 32, "num_hidden_layers": 1,
          "num_attention_heads": 4, "intermediate_size": 40})"), "q");
  EXPECT_EQ(q.arch, Architecture::Qwen2);
  EXPECT_TRUE(q.attention_bias);
}

TEST(ModelConfig, BadFieldsAreInputErrors) {
  auto missing = nlohmann::json::parse(R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 10})");
  EXPECT_THROW(ModelConfig::from_json(missing, "x"), Error);
  auto bad_gqa = nlohmann::json::parse(R"({"architectures": ["MistralForCausalLM"], "vocab_size": 10,
    "hidden_size": 24, "num_hidden_layers": 1, "num_attention_heads": 6, "num_key_value_heads": 4,
    "intermediate_size": 8})");
  EXPECT_THROW(ModelConfig::from_json(bad_gqa, "x"), Error);
  auto bad_rope = nlohmann::json::parse(R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 10,
    "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 8,
    "rope_scaling": {"rope_type": "yarn", "factor": 2.0}})");
  EXPECT_THROW(ModelConfig::from_json(bad_rope, "x"), Error);
}

}  // namespace
}  // namespace amalgam
