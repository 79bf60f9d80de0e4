// The functional forward against an independent reference (tests/eval/reference_forward.py,
// /usr/bin/python3 + torch, written after the transformers model definitions): logits of
// small random models of each family within 1e-4 with left and right padding, and greedy
// generations equal. Also: padding and the KV cache do not change results.
#include <gtest/gtest.h>

#include <fstream>

#include "io/model_dir.h"
#include "torch/eval/causal_lm.h"
#include "torch/eval/test_model.h"
#include "util/error.h"

namespace amalgam {
namespace {

using testing_model::ids_tensor;

WeightMap random_llama(const nlohmann::json& c, bool qkv_bias, bool tied) {
  torch::manual_seed(7);
  int64_t v = c["vocab_size"], e = c["hidden_size"], f = c["intermediate_size"];
  int64_t heads = c["num_attention_heads"], kvh = c.value("num_key_value_heads", heads);
  int64_t hd = c.value("head_dim", e / heads);
  auto r = [](std::vector<int64_t> s, double scale = 0.2) { return torch::randn(s) * scale; };
  WeightMap w;
  w["model.embed_tokens.weight"] = r({v, e}, 1.0);
  w["model.norm.weight"] = 1 + r({e}, 0.1);
  if (!tied) w["lm_head.weight"] = r({v, e});
  for (int64_t i = 0; i < c["num_hidden_layers"].get<int64_t>(); ++i) {
    std::string p = "model.layers." + std::to_string(i) + ".";
    w[p + "input_layernorm.weight"] = 1 + r({e}, 0.1);
    w[p + "post_attention_layernorm.weight"] = 1 + r({e}, 0.1);
    w[p + "self_attn.q_proj.weight"] = r({heads * hd, e});
    w[p + "self_attn.k_proj.weight"] = r({kvh * hd, e});
    w[p + "self_attn.v_proj.weight"] = r({kvh * hd, e});
    w[p + "self_attn.o_proj.weight"] = r({e, heads * hd});
    if (qkv_bias) {
      w[p + "self_attn.q_proj.bias"] = r({heads * hd});
      w[p + "self_attn.k_proj.bias"] = r({kvh * hd});
      w[p + "self_attn.v_proj.bias"] = r({kvh * hd});
    }
    w[p + "mlp.gate_proj.weight"] = r({f, e});
    w[p + "mlp.up_proj.weight"] = r({f, e});
    w[p + "mlp.down_proj.weight"] = r({e, f});
  }
  return w;
}

WeightMap random_gpt2(const nlohmann::json& c) {
  torch::manual_seed(11);
  int64_t v = c["vocab_size"], e = c["n_embd"], pos = c["n_positions"];
  auto r = [](std::vector<int64_t> s, double scale = 0.2) { return torch::randn(s) * scale; };
  WeightMap w;
  w["transformer.wte.weight"] = r({v, e}, 1.0);
  w["transformer.wpe.weight"] = r({pos, e}, 0.5);
  w["transformer.ln_f.weight"] = 1 + r({e}, 0.1);
  w["transformer.ln_f.bias"] = r({e}, 0.1);
  for (int64_t i = 0; i < c["n_layer"].get<int64_t>(); ++i) {
    std::string p = "transformer.h." + std::to_string(i) + ".";
    for (const char* ln : {"ln_1", "ln_2"}) {
      w[p + ln + ".weight"] = 1 + r({e}, 0.1);
      w[p + ln + ".bias"] = r({e}, 0.1);
    }
    w[p + "attn.c_attn.weight"] = r({e, 3 * e});  // Conv1D: [in, out]
    w[p + "attn.c_attn.bias"] = r({3 * e});
    w[p + "attn.c_proj.weight"] = r({e, e});
    w[p + "attn.c_proj.bias"] = r({e});
    w[p + "mlp.c_fc.weight"] = r({e, 4 * e});
    w[p + "mlp.c_fc.bias"] = r({4 * e});
    w[p + "mlp.c_proj.weight"] = r({4 * e, e});
    w[p + "mlp.c_proj.bias"] = r({e});
  }
  return w;
}

struct Case {
  std::string name;
  nlohmann::json config;
  WeightMap weights;
  DType stored;
  uint64_t shard_bytes;
};

Case make_case(const std::string& arch) {
  using nlohmann::json;
  if (arch == "llama") {
    // head_dim set apart from hidden/heads; GQA 4:2; llama3 rope scaling; tied embeddings.
    json c = {{"architectures", {"LlamaForCausalLM"}}, {"vocab_size", 61}, {"hidden_size", 32},
              {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
              {"head_dim", 16}, {"intermediate_size", 48}, {"rms_norm_eps", 1e-5},
              {"rope_theta", 500000.0}, {"max_position_embeddings", 64}, {"tie_word_embeddings", true},
              {"rope_scaling", {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                                {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 16}}}};
    return {arch, c, random_llama(c, false, true), DType::F32, 0};
  }
  if (arch == "mistral") {
    // sliding window shorter than the sequence; linear rope scaling; sharded checkpoint.
    json c = {{"architectures", {"MistralForCausalLM"}}, {"vocab_size", 50}, {"hidden_size", 32},
              {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"num_key_value_heads", 1},
              {"intermediate_size", 40}, {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0},
              {"sliding_window", 5}, {"max_position_embeddings", 64},
              {"rope_scaling", {{"type", "linear"}, {"factor", 2.0}}}};
    return {arch, c, random_llama(c, false, false), DType::F32, 8000};
  }
  if (arch == "qwen2") {
    // qkv bias; bf16 storage; dynamic rope active (sequence longer than max positions).
    json c = {{"architectures", {"Qwen2ForCausalLM"}}, {"vocab_size", 70}, {"hidden_size", 48},
              {"num_hidden_layers", 2}, {"num_attention_heads", 6}, {"num_key_value_heads", 2},
              {"intermediate_size", 64}, {"rms_norm_eps", 1e-6}, {"rope_theta", 1000000.0},
              {"max_position_embeddings", 6}, {"tie_word_embeddings", false},
              {"rope_scaling", {{"type", "dynamic"}, {"factor", 2.0}}}};
    return {arch, c, random_llama(c, true, false), DType::BF16, 0};
  }
  json c = {{"architectures", {"GPT2LMHeadModel"}}, {"vocab_size", 55}, {"n_embd", 32}, {"n_layer", 2},
            {"n_head", 4}, {"n_positions", 32}, {"layer_norm_epsilon", 1e-5},
            {"activation_function", "gelu_new"}};
  return {arch, c, random_gpt2(c), DType::F16, 0};
}

class ForwardVsReference : public ::testing::TestWithParam<std::string> {};

TEST_P(ForwardVsReference, LogitsAndGreedyMatch_slow) {
  configure_torch_threads(2);
  Case cs = make_case(GetParam());
  std::string dir = testing_model::scratch_dir("fwd_" + cs.name);
  testing_model::write_model(dir + "/model", cs.config, cs.weights, cs.stored, cs.shard_bytes);

  auto model = ModelDir::open(dir + "/model");
  auto config = ModelConfig::from_json(model->config(), dir);
  auto weights = load_weights(*model, torch::kFloat32);
  fuse_projections(config, weights);  // what `amalgam eval` runs
  int64_t v = config.vocab_size;
  // Row 0 full, row 1 left-padded by 3, row 2 right-padded by 2.
  std::vector<std::vector<int64_t>> ids = {{3, 9, 1, 4, 15, 9, 2, 6, 5, 3},
                                           {0, 0, 0, 7, 2, 8, 1, 8, 2, 8},
                                           {4, 4, 11, 2, 19, 5, 7, 3, 0, 0}};
  std::vector<std::vector<int64_t>> mask = {{1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
                                            {0, 0, 0, 1, 1, 1, 1, 1, 1, 1},
                                            {1, 1, 1, 1, 1, 1, 1, 1, 0, 0}};
  std::vector<std::vector<int64_t>> prompts = {{5, 1, 2}, {9, 8, 7, 6, 5}, {1}};
  int64_t max_new = 7;
  nlohmann::json req = {{"input_ids", ids}, {"attention_mask", mask},
                        {"generate", {{"prompts", prompts}, {"max_new_tokens", max_new}, {"eos_token_id", nullptr}}}};
  testing_model::write_text(dir + "/req.json", req.dump());
  std::string cmd = "/usr/bin/python3 " AMALGAM_SOURCE_DIR "/tests/eval/reference_forward.py logits " + dir +
                    "/model " + dir + "/req.json " + dir + "/ref";
  ASSERT_EQ(testing_model::run(cmd), 0) << cmd;

  torch::NoGradGuard no_grad;
  auto logits = forward(config, weights, ids_tensor(ids), ids_tensor(mask));
  ASSERT_EQ(logits.sizes().vec(), (std::vector<int64_t>{3, 10, v}));
  auto ref = torch::empty({3, 10, v}, torch::kFloat32);
  std::ifstream in(dir + "/ref.logits.f32", std::ios::binary);
  in.read(reinterpret_cast<char*>(ref.data_ptr<float>()), ref.numel() * 4);
  ASSERT_TRUE(in.good());
  auto real = ids_tensor(mask).to(torch::kBool).unsqueeze(-1).expand_as(ref);
  double max_diff = (logits - ref).abs().masked_select(real).max().item<double>();
  EXPECT_LT(max_diff, 1e-4) << cs.name;
  EXPECT_GT(ref.abs().max().item<double>(), 0.1);  // the comparison is not vacuous

  // The left-padded row equals the same tokens unpadded (not with dynamic rope, whose
  // frequencies depend on the longest row of the batch, in transformers as here).
  if (cs.name != "qwen2") {
  auto alone = forward(config, weights, ids_tensor({{7, 2, 8, 1, 8, 2, 8}}), torch::ones({1, 7}, torch::kInt64));
  EXPECT_LT((alone[0] - logits[1].narrow(0, 3, 7)).abs().max().item<double>(), 1e-4);
  }

  // Greedy: batched with left padding and a KV cache vs the reference's row-by-row loop.
  auto gen = generate_greedy(config, weights, prompts, max_new, std::nullopt);
  std::ifstream jf(dir + "/ref.json");
  auto refj = nlohmann::json::parse(jf);
  auto ref_gen = refj["generations"].get<std::vector<std::vector<int64_t>>>();
  EXPECT_EQ(gen, ref_gen) << cs.name;
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Families, ForwardVsReference,
                         ::testing::Values("llama", "mistral", "qwen2", "gpt2"));

TEST(Forward, KvCacheStepsEqualFullForward) {
  Case cs = make_case("llama");
  auto config = ModelConfig::from_json(cs.config, "llama");
  torch::NoGradGuard no_grad;
  std::vector<std::vector<int64_t>> ids = {{0, 0, 5, 3, 8, 2, 9, 1}, {4, 6, 1, 3, 8, 2, 7, 1}};
  std::vector<std::vector<int64_t>> mask = {{0, 0, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1, 1}};
  auto full = forward(config, cs.weights, ids_tensor(ids), ids_tensor(mask));
  KVCache cache;
  auto t_ids = ids_tensor(ids), t_mask = ids_tensor(mask);
  auto first = forward(config, cs.weights, t_ids.narrow(1, 0, 5), t_mask.narrow(1, 0, 5), &cache);
  EXPECT_EQ(cache.length(), 5);
  for (int64_t t = 5; t < 8; ++t) {
    // Alternate the two mask conventions: new tokens only, or cached + new.
    auto m = t % 2 ? t_mask.narrow(1, t, 1) : t_mask.narrow(1, 0, t + 1);
    auto step = forward(config, cs.weights, t_ids.narrow(1, t, 1), m, &cache);
    EXPECT_LT((step.select(1, 0) - full.select(1, t)).abs().max().item<double>(), 1e-4) << t;
  }
  EXPECT_LT((first - full.narrow(1, 0, 5)).abs().masked_select(t_mask.narrow(1, 0, 5).unsqueeze(-1).to(torch::kBool).expand_as(first)).max().item<double>(), 1e-5);
}

TEST(Forward, FusedProjectionsEqualSeparateOnes) {
  for (const char* arch : {"llama", "qwen2"}) {
    Case cs = make_case(arch);
    auto config = ModelConfig::from_json(cs.config, arch);
    torch::NoGradGuard no_grad;
    auto ids = ids_tensor({{1, 2, 3, 4, 5}, {0, 6, 7, 8, 9}});
    auto mask = ids_tensor({{1, 1, 1, 1, 1}, {0, 1, 1, 1, 1}});
    auto separate = forward(config, cs.weights, ids, mask);
    WeightMap fused = cs.weights;
    size_t before = fused.size();
    fuse_projections(config, fused);
    EXPECT_EQ(fused.size(), before + 2 * config.num_layers + (std::string(arch) == "qwen2" ? config.num_layers : 0));
    EXPECT_TRUE(fused.count("model.layers.1.self_attn.qkv_proj.weight"));
    // The original names now view the fused storage: no second copy of the weights.
    EXPECT_EQ(fused["model.layers.0.self_attn.k_proj.weight"].data_ptr<float>(),
              fused["model.layers.0.self_attn.qkv_proj.weight"].data_ptr<float>() +
                  fused["model.layers.0.self_attn.q_proj.weight"].numel());
    auto joined = forward(config, fused, ids, mask);
    EXPECT_LT((joined - separate).abs().max().item<double>(), 1e-5) << arch;
  }
  // A layer with only some of the q/k/v biases keeps its separate projections.
  Case cs = make_case("qwen2");
  auto config = ModelConfig::from_json(cs.config, "qwen2");
  cs.weights.erase("model.layers.0.self_attn.v_proj.bias");
  WeightMap fused = cs.weights;
  fuse_projections(config, fused);
  EXPECT_FALSE(fused.count("model.layers.0.self_attn.qkv_proj.weight"));
  EXPECT_TRUE(fused.count("model.layers.1.self_attn.qkv_proj.bias"));
  torch::NoGradGuard no_grad;
  auto ids = ids_tensor({{1, 2, 3}});
  auto one = torch::ones({1, 3}, torch::kInt64);
  EXPECT_LT((forward(config, fused, ids, one) - forward(config, cs.weights, ids, one)).abs().max().item<double>(), 1e-5);
}

TEST(Forward, Bf16ComputeIsClose) {
  Case cs = make_case("qwen2");
  auto config = ModelConfig::from_json(cs.config, "qwen2");
  WeightMap bf;
  for (auto& [k, t] : cs.weights) bf[k] = t.to(torch::kBFloat16);
  torch::NoGradGuard no_grad;
  auto ids = ids_tensor({{1, 2, 3, 4, 5}});
  auto a = forward(config, cs.weights, ids, torch::ones({1, 5}, torch::kInt64));
  auto b = forward(config, bf, ids, torch::ones({1, 5}, torch::kInt64));
  EXPECT_EQ(b.scalar_type(), torch::kFloat32);
  EXPECT_LT((a - b).abs().max().item<double>(), 0.1 * a.abs().max().item<double>());
}

TEST(Forward, MissingTensorNamesIt) {
  Case cs = make_case("llama");
  auto config = ModelConfig::from_json(cs.config, "llama");
  cs.weights.erase("model.layers.1.mlp.up_proj.weight");
  try {
    forward(config, cs.weights, ids_tensor({{1, 2}}), torch::ones({1, 2}, torch::kInt64));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.layers.1.mlp.up_proj.weight"), std::string::npos);
  }
}

}  // namespace
}  // namespace amalgam
