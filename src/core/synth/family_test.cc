#include "synth/family.h"

#include <cmath>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "util/error.h"

namespace amalgam::synth {
namespace {

std::map<std::string, std::vector<int64_t>> by_name(const ModelShape& s) {
  std::map<std::string, std::vector<int64_t>> m;
  for (const auto& t : tensor_specs(s)) EXPECT_TRUE(m.emplace(t.name, t.shape).second) << t.name;
  return m;
}

TEST(SynthFamily, ParsesSizes) {
  EXPECT_EQ(parse_param_count("1M"), 1000000u);
  EXPECT_EQ(parse_param_count("0.5B"), 500000000u);
  EXPECT_EQ(parse_param_count("3B"), 3000000000u);
  EXPECT_EQ(parse_param_count("250K"), 250000u);
  EXPECT_EQ(parse_param_count("12345"), 12345u);
  EXPECT_THROW(parse_param_count("3X"), Error);
  EXPECT_THROW(parse_param_count("big"), Error);
  EXPECT_THROW(parse_param_count("-1M"), Error);
  EXPECT_THROW(parse_family("bert"), Error);
  EXPECT_EQ(parse_family("Qwen2"), Family::Qwen2);
}

// Parameter counts of the real checkpoints (published numbers).
TEST(SynthFamily, RealPresetsMatchPublishedCounts) {
  ModelShape q = shape_for_size(Family::Qwen2, parse_param_count("0.5B"));
  EXPECT_EQ(q.preset, "Qwen2-0.5B");
  EXPECT_EQ(q.hidden, 896);
  EXPECT_EQ(q.layers, 24);
  EXPECT_EQ(q.heads, 14);
  EXPECT_EQ(q.kv_heads, 2);
  EXPECT_EQ(q.intermediate, 4864);
  EXPECT_EQ(q.vocab, 151936);
  EXPECT_TRUE(q.tied);
  EXPECT_EQ(parameter_count(q), 494032768u);
  EXPECT_EQ(parameter_count(shape_for_size(Family::Llama, 7000000000ULL)), 6738415616u);
  EXPECT_EQ(parameter_count(shape_for_size(Family::Mistral, 7000000000ULL)), 7241732096u);
  EXPECT_EQ(parameter_count(shape_for_size(Family::Gpt2, 124000000ULL)), 124439808u);
}

TEST(SynthFamily, Qwen2HalfBTensorShapes) {
  auto m = by_name(shape_for_size(Family::Qwen2, 500000000ULL));
  EXPECT_EQ(m.size(), 1u + 24 * 12 + 1);  // embed, 12 per layer (incl. q/k/v biases), norm
  EXPECT_EQ(m["model.embed_tokens.weight"], (std::vector<int64_t>{151936, 896}));
  EXPECT_EQ(m["model.layers.23.self_attn.q_proj.weight"], (std::vector<int64_t>{896, 896}));
  EXPECT_EQ(m["model.layers.0.self_attn.q_proj.bias"], (std::vector<int64_t>{896}));
  EXPECT_EQ(m["model.layers.0.self_attn.k_proj.weight"], (std::vector<int64_t>{128, 896}));
  EXPECT_EQ(m["model.layers.0.self_attn.v_proj.bias"], (std::vector<int64_t>{128}));
  EXPECT_EQ(m["model.layers.0.mlp.down_proj.weight"], (std::vector<int64_t>{896, 4864}));
  EXPECT_EQ(m["model.layers.0.mlp.gate_proj.weight"], (std::vector<int64_t>{4864, 896}));
  EXPECT_EQ(m["model.norm.weight"], (std::vector<int64_t>{896}));
  EXPECT_EQ(m.count("lm_head.weight"), 0u);
}

TEST(SynthFamily, LlamaAndMistralNames) {
  for (Family f : {Family::Llama, Family::Mistral}) {
    ModelShape s = shape_for_size(f, 10000000);
    auto m = by_name(s);
    EXPECT_FALSE(s.tied);
    EXPECT_EQ(m.size(), 2u + 9 * s.layers + 1) << family_name(f);
    EXPECT_EQ(m["lm_head.weight"], (std::vector<int64_t>{s.vocab, s.hidden}));
    EXPECT_EQ(m["model.layers.0.input_layernorm.weight"], (std::vector<int64_t>{s.hidden}));
    EXPECT_EQ(m["model.layers.0.post_attention_layernorm.weight"], (std::vector<int64_t>{s.hidden}));
    EXPECT_EQ(m["model.layers.0.self_attn.k_proj.weight"],
              (std::vector<int64_t>{s.kv_heads * s.head_dim, s.hidden}));
    EXPECT_EQ(m["model.layers.0.self_attn.o_proj.weight"],
              (std::vector<int64_t>{s.hidden, s.heads * s.head_dim}));
    EXPECT_EQ(m["model.layers.0.mlp.up_proj.weight"], (std::vector<int64_t>{s.intermediate, s.hidden}));
    EXPECT_EQ(m.count("model.layers.0.self_attn.q_proj.bias"), 0u);
    EXPECT_EQ(s.heads % s.kv_heads, 0);
  }
  EXPECT_LT(shape_for_size(Family::Mistral, 100000000).kv_heads,
            shape_for_size(Family::Mistral, 100000000).heads);
}

TEST(SynthFamily, Gpt2Conv1DLayout) {
  ModelShape s = shape_for_size(Family::Gpt2, 124000000);
  auto m = by_name(s);
  EXPECT_EQ(m.size(), 2u + 12 * 12 + 2);
  EXPECT_EQ(m["transformer.wte.weight"], (std::vector<int64_t>{50257, 768}));
  EXPECT_EQ(m["transformer.wpe.weight"], (std::vector<int64_t>{1024, 768}));
  EXPECT_EQ(m["transformer.h.11.attn.c_attn.weight"], (std::vector<int64_t>{768, 2304}));
  EXPECT_EQ(m["transformer.h.0.attn.c_attn.bias"], (std::vector<int64_t>{2304}));
  EXPECT_EQ(m["transformer.h.0.mlp.c_fc.weight"], (std::vector<int64_t>{768, 3072}));
  EXPECT_EQ(m["transformer.h.0.mlp.c_proj.weight"], (std::vector<int64_t>{3072, 768}));
  EXPECT_EQ(m["transformer.h.0.ln_2.bias"], (std::vector<int64_t>{768}));
  EXPECT_EQ(m["transformer.ln_f.weight"], (std::vector<int64_t>{768}));
  EXPECT_EQ(m.count("lm_head.weight"), 0u);
}

TEST(SynthFamily, ScaledSizesLandClose) {
  for (Family f : {Family::Llama, Family::Mistral, Family::Qwen2, Family::Gpt2}) {
    for (const char* size : {"1M", "3M", "10M", "30M", "100M", "300M", "1B", "3B", "13B"}) {
      const uint64_t want = parse_param_count(size);
      ModelShape s = shape_for_size(f, want);
      const double got = static_cast<double>(parameter_count(s));
      EXPECT_LT(std::abs(std::log(got / want)), std::log(1.2))
          << family_name(f) << " " << size << " got " << got;
      EXPECT_GE(s.layers, 1);
      EXPECT_EQ(s.heads * s.head_dim, s.hidden) << family_name(f) << " " << size;
      EXPECT_GE(s.vocab, 256);
    }
  }
  EXPECT_THROW(shape_for_size(Family::Llama, 1000), Error);
}

TEST(SynthFamily, ConfigJsonHasTheKeysLoadersRead) {
  ModelShape q = shape_for_size(Family::Qwen2, 500000000);
  auto c = config_json(q, DType::BF16);
  EXPECT_EQ(c["architectures"][0], "Qwen2ForCausalLM");
  EXPECT_EQ(c["model_type"], "qwen2");
  EXPECT_EQ(c["torch_dtype"], "bfloat16");
  EXPECT_EQ(c["hidden_size"], 896);
  EXPECT_EQ(c["num_key_value_heads"], 2);
  EXPECT_EQ(c["tie_word_embeddings"], true);
  EXPECT_EQ(c["vocab_size"], 151936);
  auto g = config_json(shape_for_size(Family::Gpt2, 1000000), DType::F32);
  EXPECT_EQ(g["architectures"][0], "GPT2LMHeadModel");
  EXPECT_EQ(g["torch_dtype"], "float32");
  EXPECT_LT(g["eos_token_id"].get<int64_t>(), g["vocab_size"].get<int64_t>());
  auto m = config_json(shape_for_size(Family::Mistral, 7000000000ULL), DType::F16);
  EXPECT_EQ(m["architectures"][0], "MistralForCausalLM");
  EXPECT_EQ(m["num_key_value_heads"], 8);
  EXPECT_EQ(m["torch_dtype"], "float16");
}

}  // namespace
}  // namespace amalgam::synth
