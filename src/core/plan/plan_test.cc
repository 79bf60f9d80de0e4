// Planner tests on tiny checkpoints written with ShardedWriter: tensor list and order,
// t per layer, parameter precedence, base auto-add, slices renumbering, passthrough,
// tied lm_head, shape rectification / GTA drops, dtypes, config and tokenizer donors.
#include "plan/plan.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "plan/plan_test_util.h"
#include "plan/tensor_names.h"
#include "util/error.h"

namespace amalgam {
namespace {
using namespace plan_test;

testing::Environment* const cleanup = testing::AddGlobalTestEnvironment(new ScratchCleanup);

struct Models {
  std::string base, m1, m2;
};

// Three llama-shaped models: 5 layers, vocab 32, hidden 4.
const Models& llama3() {
  static Models m = {
      write_model("base", llama_tensors(5, 32, 4, true), llama_config(5, 32, 4)),
      write_model("m1", llama_tensors(5, 32, 4, true), llama_config(5, 32, 4)),
      write_model("m2", llama_tensors(5, 32, 4, true), llama_config(5, 32, 4)),
  };
  return m;
}

MergePlan plan_text(const std::string& text, ModelSet& set, PlanOptions opt = {}) {
  return make_plan(parse_recipe_text(text), set, opt);
}
MergePlan plan_text(const std::string& text) {
  ModelSet set;
  return plan_text(text, set);
}

const PlannedTensor& find(const MergePlan& p, const std::string& name) {
  for (const auto& t : p.tensors)
    if (t.job.name == name) return t;
  throw std::runtime_error("no planned tensor " + name);
}

void expect_error(const std::string& text, ErrorKind kind, const std::string& needle) {
  try {
    plan_text(text);
    FAIL() << "no error for:\n" << text;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << "expected '" << needle << "' in: " << e.what();
  }
}

bool has_warning(const MergePlan& p, const std::string& needle) {
  for (const auto& w : p.warnings)
    if (w.find(needle) != std::string::npos) return true;
  return false;
}

TEST(LayerIndex, ArchitectureAgnosticNames) {
  EXPECT_EQ(layer_index("model.layers.12.mlp.up_proj.weight"), 12);
  EXPECT_EQ(layer_index("transformer.h.3.attn.c_attn.weight"), 3);
  EXPECT_EQ(layer_index("transformer.blocks.0.ffn.weight"), 0);
  EXPECT_EQ(layer_index("encoder.layer.7.output.dense.bias"), 7);
  EXPECT_EQ(layer_index("model.embed_tokens.weight"), -1);
  EXPECT_EQ(layer_index("model.norm.weight"), -1);
  EXPECT_EQ(layer_index("model.layers.5"), -1);  // needs a component after the number
  EXPECT_EQ(layer_index("vision.patch.12.weight"), -1);
  EXPECT_EQ(with_layer_index("model.layers.12.mlp.up_proj.weight", 3),
            "model.layers.3.mlp.up_proj.weight");
  EXPECT_EQ(with_layer_index("transformer.h.3.mlp.c_fc.weight", 10),
            "transformer.h.10.mlp.c_fc.weight");
  EXPECT_TRUE(is_pre_tensor_name("model.embed_tokens.weight"));
  EXPECT_TRUE(is_pre_tensor_name("transformer.wpe.weight"));
  EXPECT_FALSE(is_pre_tensor_name("lm_head.weight"));
  EXPECT_FALSE(is_pre_tensor_name("gpt_neox.embed_out.weight"));
  EXPECT_FALSE(is_pre_tensor_name("transformer.ln_f.weight"));
}

TEST(Plan, ModelsFormTensorListOrderAndBaseIndex) {
  const Models& m = llama3();
  MergePlan p = plan_text("merge_method: ties\nbase_model: " + m.base +
                          "\nmodels:\n  - model: " + m.base + "\n  - model: " + m.m1 +
                          "\n    parameters: {weight: 1.0, density: 0.5}\n  - model: " + m.m2 +
                          "\n    parameters: {weight: 0.5}\n");
  ASSERT_EQ(p.tensors.size(), 1u + 5 * 3 + 2);
  EXPECT_EQ(p.tensors.front().job.name, "model.embed_tokens.weight");
  EXPECT_EQ(p.tensors[1].job.name, "model.layers.0.self_attn.q_proj.weight");
  EXPECT_EQ(p.tensors[4].job.name, "model.layers.1.self_attn.q_proj.weight");
  EXPECT_EQ(p.tensors[15].job.name, "model.layers.4.input_layernorm.weight");
  EXPECT_EQ(p.tensors[16].job.name, "model.norm.weight");
  EXPECT_EQ(p.tensors[17].job.name, "lm_head.weight");
  const auto& q = find(p, "model.layers.2.self_attn.q_proj.weight");
  EXPECT_EQ(q.method->name(), "ties");
  ASSERT_EQ(q.job.n_inputs(), 3u);
  EXPECT_EQ(q.job.base, 0);  // listed first
  EXPECT_EQ(q.job.input_labels[1], m.m1);
  EXPECT_EQ(q.inputs[2].tensor, "model.layers.2.self_attn.q_proj.weight");
  EXPECT_EQ(q.job.shape, (std::vector<int64_t>{4, 4}));
  EXPECT_EQ(q.job.model_params[1].at("density"), 0.5);
  EXPECT_EQ(q.job.model_params[2].at("density"), 1.0);  // method default
  EXPECT_EQ(q.job.model_params[2].at("weight"), 0.5);
  EXPECT_EQ(q.job.model_params[0].count("weight"), 0u);  // base: required value left unset
  EXPECT_EQ(q.job.params.at("normalize"), 1.0);          // ties default
  EXPECT_EQ(p.config_donor, p.tensors[0].inputs[0].model);
  EXPECT_EQ(p.tokenizer_donor, p.config_donor);
}

TEST(Plan, BaseAutoAppendedLastForTaskArithmetic) {
  const Models& m = llama3();
  MergePlan p = plan_text("merge_method: task_arithmetic\nbase_model: " + m.base +
                          "\nparameters:\n  weight: 0.3\nmodels:\n  - model: " + m.m1 +
                          "\n  - model: " + m.m2 + "\n");
  const auto& t = find(p, "model.norm.weight");
  ASSERT_EQ(t.job.n_inputs(), 3u);
  EXPECT_EQ(t.job.base, 2);
  EXPECT_EQ(t.job.input_labels[2], m.base);
  EXPECT_EQ(t.job.model_params[0].at("weight"), 0.3);  // top level applies to every model
  EXPECT_FALSE(has_warning(p, "counts it as one more input"));
}

TEST(Plan, LinearCountsAutoAddedBaseAsInput) {
  const Models& m = llama3();
  // §7: linear with base_model and no weight for it -> error naming the base_model line.
  expect_error("merge_method: linear\nbase_model: " + m.base + "\nmodels:\n  - model: " + m.m1 +
                   "\n    parameters: {weight: 1}\n",
               ErrorKind::Recipe, "<string>:2: model '" + m.base + "' has no 'weight'");
  // With a top-level weight the base is averaged in.
  MergePlan p =
      plan_text("merge_method: linear\nbase_model: " + m.base + "\nmodels:\n  - model: " + m.m1 +
                "\n    parameters: {weight: 3}\nparameters: {weight: 1}\n");
  const auto& t = find(p, "model.layers.0.mlp.up_proj.weight");
  ASSERT_EQ(t.job.n_inputs(), 2u);
  EXPECT_EQ(t.job.base, -1);
  EXPECT_EQ(t.job.model_params[0].at("weight"), 3.0);
  EXPECT_EQ(t.job.model_params[1].at("weight"), 1.0);
  EXPECT_TRUE(has_warning(p, "counts it as one more input"));
}

TEST(Plan, GradientTPerLayerAndNonLayerTensorsAtZero) {
  const Models& m = llama3();
  MergePlan p =
      plan_text("merge_method: ties\nbase_model: " + m.base + "\nmodels:\n  - model: " + m.m1 +
                "\n    parameters:\n      weight: [0.2, 0.8, 0.4]\n      density: [1, 0.5]\n");
  const double w[] = {0.2, 0.5, 0.8, 0.6, 0.4};  // §7 gradient row, t = idx/4
  for (int l = 0; l < 5; ++l) {
    const auto& t = find(p, "model.layers." + std::to_string(l) + ".mlp.up_proj.weight");
    EXPECT_NEAR(t.job.model_params[0].at("weight"), w[l], 1e-12) << l;
    EXPECT_NEAR(t.job.model_params[0].at("density"), 1 - 0.125 * l, 1e-12) << l;
  }
  EXPECT_NEAR(find(p, "model.embed_tokens.weight").job.model_params[0].at("weight"), 0.2, 1e-12);
  EXPECT_NEAR(find(p, "lm_head.weight").job.model_params[0].at("weight"), 0.2, 1e-12);
  EXPECT_NEAR(find(p, "model.norm.weight").job.model_params[0].at("density"), 1.0, 1e-12);
}

TEST(Plan, PrecedenceSourceSliceTopDefaultWithFilters) {
  const Models& m = llama3();
  MergePlan p = plan_text(
      "merge_method: ties\nbase_model: " + m.base +
      "\nslices:\n  - sources:\n"
      "      - model: " +
      m.base +
      "\n        layer_range: [0, 5]\n"
      "      - model: " +
      m.m1 +
      "\n        layer_range: [0, 5]\n"
      "        parameters:\n          weight:\n            - filter: mlp\n              value: "
      "0.9\n"
      "      - model: " +
      m.m2 +
      "\n        layer_range: [0, 5]\n"
      "    parameters:\n      weight:\n        - filter: self_attn\n          value: 0.7\n"
      "      lambda: 0.5\n"
      "parameters:\n  weight: 0.1\n  lambda: 2\n  normalize: false\n");
  const auto& mlp = find(p, "model.layers.1.mlp.up_proj.weight");
  EXPECT_EQ(mlp.job.model_params[1].at("weight"), 0.9);  // source entry
  EXPECT_EQ(mlp.job.model_params[2].at("weight"), 0.1);  // slice filter misses -> top level
  const auto& attn = find(p, "model.layers.1.self_attn.q_proj.weight");
  EXPECT_EQ(attn.job.model_params[1].at("weight"), 0.7);  // source filter misses -> slice
  EXPECT_EQ(attn.job.model_params[2].at("weight"), 0.7);
  const auto& norm = find(p, "model.layers.1.input_layernorm.weight");
  EXPECT_EQ(norm.job.model_params[1].at("weight"), 0.1);
  EXPECT_EQ(norm.job.params.at("lambda"), 0.5);     // slice beats top level
  EXPECT_EQ(norm.job.params.at("normalize"), 0.0);  // top level beats default
  EXPECT_EQ(norm.job.params.at("rescale"), 0.0);    // default
}

TEST(Plan, SlicesRenumberingPassthroughAndPerModelFilterUsesInputName) {
  const Models& m = llama3();
  ModelSet set;
  MergePlan p = plan_text(
      "merge_method: passthrough\nslices:\n"
      "  - sources:\n      - model: " +
          m.m1 +
          "\n        layer_range: [0, 3]\n"
          "  - sources:\n      - model: " +
          m.m2 +
          "\n        layer_range: [1, 5]\n"
          "        parameters:\n          scale:\n            - filter: layers.1.\n              "
          "value: 0.5\n"
          "  - sources:\n      - model: " +
          m.m1 + "\n        layer_range: [4, 5]\n",
      set);
  // 3 + 4 + 1 = 8 output layers of 3 tensors, embed first, norm + lm_head last.
  ASSERT_EQ(p.tensors.size(), 1u + 8 * 3 + 2);
  const auto& l3 = find(p, "model.layers.3.self_attn.q_proj.weight");
  ASSERT_EQ(l3.job.n_inputs(), 1u);
  EXPECT_EQ(l3.job.input_labels[0], m.m2);
  EXPECT_EQ(l3.inputs[0].tensor, "model.layers.1.self_attn.q_proj.weight");
  // scale's filter matches the input name layers.1 (output layer 3), not output layers.1.
  EXPECT_EQ(l3.job.model_params[0].at("scale"), 0.5);
  EXPECT_EQ(find(p, "model.layers.1.self_attn.q_proj.weight").job.model_params[0].count("scale"),
            0u);
  EXPECT_EQ(find(p, "model.layers.4.mlp.up_proj.weight").job.model_params[0].count("scale"), 0u);
  const auto& l7 = find(p, "model.layers.7.input_layernorm.weight");
  EXPECT_EQ(l7.inputs[0].tensor, "model.layers.4.input_layernorm.weight");
  EXPECT_EQ(l7.job.input_labels[0], m.m1);
  // pre from the first slice's source, post from the last slice's.
  EXPECT_EQ(find(p, "model.embed_tokens.weight").job.input_labels[0], m.m1);
  EXPECT_EQ(find(p, "model.norm.weight").job.input_labels[0], m.m1);
  EXPECT_EQ(p.output_config["num_hidden_layers"], 8);
  EXPECT_EQ(p.output_config["model_type"], "llama");
  EXPECT_EQ(p.config_donor, set.index_of(m.m1));
}

TEST(Plan, SlicesRestackLayerTypesAndWarnAboutTiedConfig) {
  nlohmann::json cfg = llama_config(4, 32, 4);
  cfg["layer_types"] = {"sliding_attention", "full_attention", "sliding_attention",
                        "full_attention"};
  cfg["tie_word_embeddings"] = true;
  std::string a = write_model("lt_a", llama_tensors(4, 32, 4, true), cfg);
  MergePlan p = plan_text("merge_method: passthrough\nslices:\n  - sources:\n      - model: " + a +
                          "\n        layer_range: [0, 2]\n  - sources:\n      - model: " + a +
                          "\n        layer_range: [1, 4]\n");
  EXPECT_EQ(p.output_config["num_hidden_layers"], 5);
  EXPECT_EQ(p.output_config["layer_types"],
            nlohmann::json({"sliding_attention", "full_attention", "full_attention",
                            "sliding_attention", "full_attention"}));
  EXPECT_TRUE(has_warning(p, "tie_word_embeddings: true"));
}

TEST(Plan, TPerSliceRestartsAndSingleLayerSliceUsesOne) {
  const Models& m = llama3();
  MergePlan p = plan_text(
      "merge_method: slerp\nbase_model: " + m.base +
      "\nslices:\n"
      "  - sources:\n      - model: " +
      m.base +
      "\n        layer_range: [0, 3]\n"
      "      - model: " +
      m.m1 +
      "\n        layer_range: [0, 3]\n"
      "  - sources:\n      - model: " +
      m.base +
      "\n        layer_range: [3, 4]\n"
      "      - model: " +
      m.m1 +
      "\n        layer_range: [3, 4]\n"
      "parameters:\n  t:\n    - filter: self_attn\n      value: [0, 1]\n    - value: [0.2, 0.6]\n");
  EXPECT_DOUBLE_EQ(find(p, "model.layers.0.self_attn.q_proj.weight").job.params.at("t"), 0.0);
  EXPECT_DOUBLE_EQ(find(p, "model.layers.1.self_attn.q_proj.weight").job.params.at("t"), 0.5);
  EXPECT_DOUBLE_EQ(find(p, "model.layers.2.self_attn.q_proj.weight").job.params.at("t"), 1.0);
  EXPECT_DOUBLE_EQ(find(p, "model.layers.3.self_attn.q_proj.weight").job.params.at("t"), 1.0);
  EXPECT_DOUBLE_EQ(find(p, "model.layers.1.mlp.up_proj.weight").job.params.at("t"), 0.4);
  EXPECT_DOUBLE_EQ(find(p, "model.embed_tokens.weight").job.params.at("t"), 0.2);
  EXPECT_DOUBLE_EQ(find(p, "lm_head.weight").job.params.at("t"), 0.2);
  EXPECT_EQ(find(p, "model.layers.3.mlp.up_proj.weight").job.base, 0);
  EXPECT_EQ(p.output_config["num_hidden_layers"], 4);
}

TEST(Plan, TiedLmHeadReadFromEmbeddings) {
  std::string tied = write_model("tied", llama_tensors(2, 32, 4, false), llama_config(2, 32, 4));
  std::string untied = write_model("untied", llama_tensors(2, 32, 4, true), llama_config(2, 32, 4));
  MergePlan p = plan_text("merge_method: task_arithmetic\nbase_model: " + tied +
                          "\nmodels:\n  - model: " + untied + "\n    parameters: {weight: 1}\n");
  const auto& head = find(p, "lm_head.weight");
  ASSERT_EQ(head.job.n_inputs(), 2u);
  EXPECT_EQ(head.inputs[0].tensor, "lm_head.weight");             // untied model
  EXPECT_EQ(head.inputs[1].tensor, "model.embed_tokens.weight");  // tied base
  EXPECT_EQ(head.job.base, 1);
  EXPECT_TRUE(head.job.is_embedding);
  EXPECT_EQ(p.tensors.back().job.name, "lm_head.weight");
  // All tied: no lm_head is planned.
  MergePlan q = plan_text("merge_method: linear\nmodels:\n  - model: " + tied +
                          "\n    parameters: {weight: 1}\n");
  for (const auto& t : q.tensors) EXPECT_NE(t.job.name, "lm_head.weight");
}

TEST(Plan, EmbeddingRectificationAndConfigVocab) {
  const Models& m = llama3();
  std::string big = write_model("big_vocab", llama_tensors(5, 36, 4, true), llama_config(5, 36, 4));
  MergePlan p = plan_text("merge_method: linear\nmodels:\n  - model: " + big +
                          "\n  - model: " + m.m1 + "\nparameters: {weight: 0.5}\n");
  const auto& e = find(p, "model.embed_tokens.weight");
  EXPECT_EQ(e.job.shape, (std::vector<int64_t>{32, 4}));
  EXPECT_EQ(e.inputs[0].stored_shape, (std::vector<int64_t>{36, 4}));
  EXPECT_TRUE(e.job.is_embedding);
  EXPECT_EQ(find(p, "lm_head.weight").job.shape, (std::vector<int64_t>{32, 4}));
  EXPECT_TRUE(
      has_warning(p, "tensor 'model.embed_tokens.weight': shapes differ ([36, 4] in '" + big));
  EXPECT_EQ(p.output_config["vocab_size"], 32);  // donor said 36: the rows written are 32
  // GTA: embeddings cut to the base's rows; a smaller model cannot be extended.
  MergePlan g = plan_text("merge_method: ties\nbase_model: " + m.base +
                          "\nmodels:\n  - model: " + big + "\n    parameters: {weight: 1}\n");
  EXPECT_EQ(find(g, "lm_head.weight").job.shape, (std::vector<int64_t>{32, 4}));
  expect_error("merge_method: ties\nbase_model: " + big + "\nmodels:\n  - model: " + m.m1 +
                   "\n    parameters: {weight: 1}\n",
               ErrorKind::Input, "cannot extend embeddings");
}

TEST(Plan, VocabSizedLayerMatrixIsNotAnEmbedding) {
  // vocab 8 = rows of up_proj [2*4, 4]: only tensors outside the layer stack count.
  std::string a = write_model("v8", llama_tensors(2, 8, 4, true), llama_config(2, 8, 4));
  MergePlan p =
      plan_text("merge_method: linear\nmodels:\n  - model: " + a + "\nparameters: {weight: 1}\n");
  EXPECT_FALSE(find(p, "model.layers.0.mlp.up_proj.weight").job.is_embedding);
  EXPECT_TRUE(find(p, "model.embed_tokens.weight").job.is_embedding);
  EXPECT_FALSE(find(p, "model.norm.weight").job.is_embedding);
}

TEST(Plan, NonEmbeddingMismatchDropsForGtaAndFailsOtherwise) {
  const Models& m = llama3();
  auto wide = llama_tensors(5, 32, 4, true);
  for (auto& t : wide)
    if (t.name == "model.layers.2.mlp.up_proj.weight") t.shape = {6, 4};
  std::string odd = write_model("odd", wide, llama_config(5, 32, 4));
  MergePlan p = plan_text("merge_method: task_arithmetic\nbase_model: " + m.base +
                          "\nmodels:\n  - model: " + odd + "\n  - model: " + m.m1 +
                          "\nparameters: {weight: 1}\n");
  const auto& t = find(p, "model.layers.2.mlp.up_proj.weight");
  ASSERT_EQ(t.job.n_inputs(), 2u);
  EXPECT_EQ(t.job.input_labels[0], m.m1);
  EXPECT_EQ(t.job.base, 1);
  EXPECT_EQ(find(p, "model.layers.1.mlp.up_proj.weight").job.n_inputs(), 3u);
  EXPECT_TRUE(has_warning(p, "model '" + odd + "' left out of 1 tensor(s)"));
  expect_error("merge_method: linear\nmodels:\n  - model: " + odd + "\n  - model: " + m.m1 +
                   "\nparameters: {weight: 1}\n",
               ErrorKind::Input,
               "tensor 'model.layers.2.mlp.up_proj.weight': shape mismatch: [6, 4] in '" + odd +
                   "', [8, 4] in '" + m.m1 + "'");
}

TEST(Plan, MissingTensorNamesModelAndTensor) {
  const Models& m = llama3();
  auto t = llama_tensors(5, 32, 4, true);
  t.erase(t.begin() + 4);  // model.layers.1.self_attn.q_proj.weight
  std::string holey = write_model("holey", t, llama_config(5, 32, 4));
  expect_error("merge_method: linear\nmodels:\n  - model: " + m.m1 + "\n  - model: " + holey +
                   "\nparameters: {weight: 1}\n",
               ErrorKind::Input,
               "model '" + holey + "' has no tensor 'model.layers.1.self_attn.q_proj.weight'");
}

TEST(Plan, RecipeLevelErrorsNameTheLine) {
  const Models& m = llama3();
  expect_error(
      "merge_method: ties\nmodels:\n  - model: " + m.m1 + "\n    parameters: {weight: 1}\n",
      ErrorKind::Recipe, "<string>:1: method ties needs base_model");
  expect_error("merge_method: ties\nbase_model: " + m.base + "\nmodels:\n  - model: " + m.m1 +
                   "\n  - model: " + m.m2 + "\n    parameters: {weight: 1}\n",
               ErrorKind::Recipe,
               "<string>:4: model '" + m.m1 + "' has no 'weight' for method ties");
  expect_error("merge_method: ties\nbase_model: " + m.base + "\nmodels:\n  - model: " + m.m1 +
                   "\n    parameters:\n      weight: 1\n      density: -0.5\n",
               ErrorKind::Recipe, "<string>:7: parameter 'density' = -0.5 is out of range");
  expect_error(
      "merge_method: slerp\nbase_model: " + m.base + "\nmodels:\n  - model: " + m.m1 + "\n",
      ErrorKind::Recipe, "<string>:1: method slerp needs parameter 't'");
  expect_error("merge_method: linear\nmodels:\n  - model: /nonexistent/model\n", ErrorKind::Input,
               "<string>:3: model '/nonexistent/model'");
  expect_error("merge_method: passthrough\nslices:\n  - sources:\n      - model: " + m.m1 +
                   "\n        layer_range: [2, 9]\n",
               ErrorKind::Recipe, "<string>:4: layer_range [2, 9] is past the end");
  expect_error("merge_method: linear\nslices:\n  - sources:\n      - model: " + m.m1 +
                   "\n        layer_range: [0, 2]\n      - model: " + m.m2 +
                   "\n        layer_range: [0, 3]\nparameters: {weight: 1}\n",
               ErrorKind::Recipe, "<string>:6: layer_range [0, 3] has 3 layers");
  expect_error("merge_method: ties\nbase_model: " + m.base +
                   "\nslices:\n  - sources:\n      - model: " + m.m1 +
                   "\n        layer_range: [0, 2]\nparameters: {weight: 1}\n",
               ErrorKind::Recipe, "<string>:4: method ties needs the base model");
  expect_error("merge_method: linear\nmodels:\n  - model: " + m.m1 + "\n  - model: " + m.m1 +
                   "\nparameters: {weight: 1}\n",
               ErrorKind::Recipe, "<string>:4: model '" + m.m1 + "' is listed twice");
}

TEST(Plan, MethodValidationRunsAtPlanTime) {
  const Models& m = llama3();
  // passthrough takes exactly one tensor per job; two models is a recipe error.
  expect_error(
      "merge_method: passthrough\nmodels:\n  - model: " + m.m1 + "\n  - model: " + m.m2 + "\n",
      ErrorKind::Recipe, "<string>:1: ");
}

TEST(Plan, DifferentDepthModelsNeedSlices) {
  const Models& m = llama3();
  std::string shallow =
      write_model("shallow", llama_tensors(3, 32, 4, true), llama_config(3, 32, 4));
  expect_error("merge_method: linear\nmodels:\n  - model: " + m.m1 + "\n  - model: " + shallow +
                   "\nparameters: {weight: 1}\n",
               ErrorKind::Input, "has 3 layers");
}

TEST(Plan, OutputDtypesAndBytes) {
  std::string b16 =
      write_model("bf16", llama_tensors(2, 32, 4, true, DType::BF16), llama_config(2, 32, 4));
  std::string f16 =
      write_model("f16", llama_tensors(2, 32, 4, true, DType::F16), llama_config(2, 32, 4));
  std::string head = "merge_method: task_arithmetic\nbase_model: " + f16 +
                     "\nmodels:\n  - model: " + b16 + "\n    parameters: {weight: 1}\n";
  MergePlan p = plan_text(head);
  const auto& t = find(p, "model.norm.weight");
  EXPECT_EQ(t.out_dtype, DType::F16);  // the base's stored dtype
  EXPECT_FALSE(t.load_dtype);
  EXPECT_EQ(t.inputs[0].dtype, DType::BF16);
  // 2 inputs x 2 bytes per element read, 2 bytes written, summed over all tensors.
  uint64_t numel = 0;
  for (const auto& x : p.tensors) numel += x.job.numel();
  EXPECT_EQ(p.input_bytes(), numel * 4);
  EXPECT_EQ(p.output_bytes(), numel * 2);
  EXPECT_EQ(p.output_config["torch_dtype"], "float32");  // donor's, no dtype in the recipe
  MergePlan q = plan_text(head + "dtype: bfloat16\n");
  EXPECT_EQ(find(q, "model.norm.weight").out_dtype, DType::BF16);
  EXPECT_EQ(find(q, "model.norm.weight").load_dtype, DType::BF16);
  EXPECT_EQ(q.output_config["torch_dtype"], "bfloat16");
  MergePlan r = plan_text(head + "dtype: bfloat16\nout_dtype: torch.float32\n");
  EXPECT_EQ(find(r, "model.norm.weight").out_dtype, DType::F32);
  EXPECT_EQ(find(r, "model.norm.weight").load_dtype, DType::BF16);
  EXPECT_EQ(r.output_config["torch_dtype"], "float32");
  EXPECT_EQ(r.output_bytes(), numel * 4);
  // No base: the first model's dtype.
  MergePlan s = plan_text("merge_method: linear\nmodels:\n  - model: " + b16 +
                          "\n  - model: " + f16 + "\nparameters: {weight: 1}\n");
  EXPECT_EQ(find(s, "model.norm.weight").out_dtype, DType::BF16);
}

TEST(Plan, Gpt2NamesAndLayerCountKey) {
  auto gpt2 = [](int layers) {
    std::vector<TensorSpec> t = {{"transformer.wte.weight", {40, 4}},
                                 {"transformer.wpe.weight", {16, 4}}};
    for (int i = 0; i < layers; ++i) {
      std::string p = "transformer.h." + std::to_string(i) + ".";
      t.push_back({p + "attn.c_attn.weight", {4, 12}});
      t.push_back({p + "ln_1.weight", {4}});
    }
    t.push_back({"transformer.ln_f.weight", {4}});
    return t;
  };
  nlohmann::json cfg = {{"model_type", "gpt2"}, {"n_layer", 3}, {"vocab_size", 40}};
  std::string a = write_model("gpt2a", gpt2(3), cfg), b = write_model("gpt2b", gpt2(3), cfg);
  MergePlan p = plan_text("merge_method: passthrough\nslices:\n  - sources:\n      - model: " + a +
                          "\n        layer_range: [0, 3]\n  - sources:\n      - model: " + b +
                          "\n        layer_range: [1, 3]\n");
  ASSERT_EQ(p.tensors.size(), 2u + 5 * 2 + 1);
  EXPECT_EQ(p.tensors[0].job.name, "transformer.wte.weight");
  EXPECT_EQ(p.tensors[1].job.name, "transformer.wpe.weight");
  EXPECT_EQ(p.tensors[2].job.name, "transformer.h.0.attn.c_attn.weight");
  EXPECT_EQ(find(p, "transformer.h.4.ln_1.weight").inputs[0].tensor, "transformer.h.2.ln_1.weight");
  EXPECT_EQ(p.tensors.back().job.name, "transformer.ln_f.weight");
  EXPECT_EQ(p.output_config["n_layer"], 5);
  EXPECT_FALSE(p.output_config.contains("num_hidden_layers"));
}

TEST(Plan, TokenizerSourceChoosesDonorAndVocabulary) {
  const Models& m = llama3();
  std::string big =
      write_model("big_vocab2", llama_tensors(5, 36, 4, true), llama_config(5, 36, 4));
  ModelSet set;
  std::string models =
      "\nmodels:\n  - model: " + m.m1 + "\n  - model: " + big + "\nparameters: {weight: 1}\n";
  // tokenizer_source: a listed model -> its files and its vocabulary rows.
  MergePlan p =
      plan_text("merge_method: linear" + models + "tokenizer_source: " + m.m1 + "\n", set);
  EXPECT_EQ(p.tokenizer_donor, set.index_of(m.m1));
  EXPECT_EQ(find(p, "model.embed_tokens.weight").job.shape, (std::vector<int64_t>{32, 4}));
  // A tokenizer with more rows than some model has cannot be served without re-mapping.
  expect_error("merge_method: linear" + models + "tokenizer:\n  source: " + big + "\n",
               ErrorKind::Input, "cannot extend embeddings");
  // base: the base's vocabulary; other models' rows are cut to it.
  MergePlan q = plan_text(
      "merge_method: task_arithmetic\nbase_model: " + m.base + models + "tokenizer_source: base\n",
      set);
  EXPECT_EQ(q.tokenizer_donor, set.index_of(m.base));
  EXPECT_EQ(find(q, "lm_head.weight").job.shape, (std::vector<int64_t>{32, 4}));
  // union without tokenizer files: only when every vocabulary is the same (models with
  // tokenizers are re-mapped token by token: exec/vocab_merge_test.cc).
  expect_error("merge_method: linear" + models + "tokenizer_source: union\n", ErrorKind::Recipe,
               "<string>:6: tokenizer_source: union needs the tokenizer of '" + m.m1 + "'");
  MergePlan u =
      plan_text("merge_method: linear\nmodels:\n  - model: " + m.m1 + "\n  - model: " + m.m2 +
                "\nparameters: {weight: 1}\ntokenizer: {source: union}\n");
  EXPECT_EQ(u.tokenizer_donor, u.config_donor);
  // pad_to_multiple_of: accepted when the rows already are a multiple (32 rows).
  plan_text("merge_method: linear\nmodels:\n  - model: " + m.m1 +
            "\nparameters: {weight: 1}\n"
            "tokenizer:\n  source: base\n  pad_to_multiple_of: 16\n");
  // Otherwise the embeddings grow to the next multiple; the extra rows are padding (the
  // readers fill them with the mean real row), and vocab_size follows.
  MergePlan padded = plan_text("merge_method: linear\nmodels:\n  - model: " + m.m1 +
                               "\nparameters: {weight: 1}\n"
                               "tokenizer:\n  source: base\n  pad_to_multiple_of: 48\n");
  const PlannedTensor& embed = find(padded, "model.embed_tokens.weight");
  EXPECT_EQ(embed.job.shape, (std::vector<int64_t>{48, 4}));
  ASSERT_FALSE(embed.inputs.empty());
  EXPECT_EQ(embed.inputs[0].real_rows, 32);
  EXPECT_EQ(find(padded, "lm_head.weight").job.shape, (std::vector<int64_t>{48, 4}));
  EXPECT_EQ(padded.output_config["vocab_size"], 48);
}

TEST(Plan, ArchitectureMismatchNeedsAllowCrimes) {
  const Models& m = llama3();
  nlohmann::json cfg = llama_config(5, 32, 4);
  cfg["model_type"] = "mistral";
  std::string mistral = write_model("mistral", llama_tensors(5, 32, 4, true), cfg);
  std::string text = "merge_method: linear\nmodels:\n  - model: " + m.m1 +
                     "\n  - model: " + mistral + "\nparameters: {weight: 1}\n";
  expect_error(text, ErrorKind::Input, "--allow-crimes");
  ModelSet set;
  PlanOptions opt;
  opt.allow_crimes = true;
  opt.seed = 42;
  MergePlan p = plan_text(text, set, opt);
  EXPECT_EQ(p.tensors[0].job.seed, 42u);
}

TEST(Plan, UnusedParameterWarnings) {
  const Models& m = llama3();
  MergePlan p =
      plan_text("merge_method: ties\nbase_model: " + m.base + "\nmodels:\n  - model: " + m.m1 +
                "\n    parameters: {weight: 1, t: 0.5}\nparameters:\n  densty: 0.5\n");
  EXPECT_TRUE(has_warning(p, "<string>:7: parameter 'densty' is not used by merge method(s) ties"));
  EXPECT_TRUE(has_warning(p, "<string>:5: parameter 't' is"));
}

TEST(Plan, HubNamesResolveThroughTheLocalCache) {
  namespace fs = std::filesystem;
  fs::path cache = scratch_root() / "hub";
  fs::path repo = cache / "models--acme--tiny";
  fs::create_directories(repo / "refs");
  std::ofstream(repo / "refs" / "main") << "abc123";
  fs::path snap = repo / "snapshots" / "abc123";
  fs::create_directories(snap.parent_path());
  fs::remove_all(snap);
  fs::rename(write_model("hub_src", llama_tensors(2, 32, 4, true), llama_config(2, 32, 4)), snap);
  const char* old = std::getenv("HF_HUB_CACHE");
  std::string saved = old ? old : "";
  setenv("HF_HUB_CACHE", cache.c_str(), 1);
  MergePlan p = plan_text(
      "merge_method: linear\nmodels:\n  - model: acme/tiny\n    parameters: {weight: 1}\n");
  if (old)
    setenv("HF_HUB_CACHE", saved.c_str(), 1);
  else
    unsetenv("HF_HUB_CACHE");
  EXPECT_EQ(p.tensors[0].job.input_labels[0], "acme/tiny");
  EXPECT_EQ(p.output_config["model_type"], "llama");
}

// The fixture recipes, with their Hub names replaced by local checkpoints of the shape
// they expect, plan without error.
std::string read_fixture(const std::string& name) {
  std::ifstream in(std::string(AMALGAM_SOURCE_DIR) + "/tests/fixtures/recipes/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
  return s;
}

TEST(Plan, FixtureRecipesPlan) {
  // hidden 16: ties' density 0.1 must keep at least one element of each norm vector.
  std::string a = write_model("fx_a", llama_tensors(32, 32, 16, false), llama_config(32, 32, 16));
  std::string b = write_model("fx_b", llama_tensors(32, 32, 16, false), llama_config(32, 32, 16));
  std::string c = write_model("fx_c", llama_tensors(32, 32, 16, false), llama_config(32, 32, 16));
  auto localize = [&](std::string text) {
    text = replace_all(text, "mistralai/Mistral-7B-v0.1", a);
    text = replace_all(text, "OpenPipe/mistral-ft-optimized-1218", b);
    return replace_all(text, "mlabonne/NeuralHermes-2.5-Mistral-7B", c);
  };
  MergePlan slerp = plan_text(localize(read_fixture("slerp_filters.yaml")));
  EXPECT_EQ(slerp.tensors.size(), 1u + 32 * 3 + 1);
  // t: self_attn [0, 0.5, 0.3, 0.7, 1] at layer 8 of 32 -> s = 8/31*4.
  double s = 8.0 / 31.0 * 4;
  EXPECT_NEAR(find(slerp, "model.layers.8.self_attn.q_proj.weight").job.params.at("t"),
              (1 - (s - 1)) * 0.5 + (s - 1) * 0.3, 1e-12);
  EXPECT_EQ(find(slerp, "model.layers.8.input_layernorm.weight").job.params.at("t"), 0.5);
  EXPECT_EQ(find(slerp, "model.norm.weight").out_dtype, DType::BF16);
  MergePlan ties = plan_text(localize(read_fixture("ties_gradients.yaml")));
  EXPECT_EQ(find(ties, "model.layers.31.mlp.up_proj.weight").job.model_params[1].at("density"),
            0.1);
  EXPECT_EQ(find(ties, "model.layers.31.mlp.up_proj.weight").job.model_params[2].at("weight"), 1.0);
  MergePlan frank = plan_text(localize(read_fixture("passthrough_frankenmerge.yaml")));
  EXPECT_EQ(frank.output_config["num_hidden_layers"], 48);
  EXPECT_EQ(find(frank, "model.layers.24.mlp.up_proj.weight").inputs[0].tensor,
            "model.layers.8.mlp.up_proj.weight");
}

}  // namespace
}  // namespace amalgam
