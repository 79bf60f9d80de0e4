// Recipe parser tests: the fixture recipes (shapes of published mergekit recipes), every
// error class with its line number, and the METHODS.md §7 gradient / filter-list rows.
#include "recipe/recipe.h"

#include <gtest/gtest.h>

#include "util/error.h"

namespace amalgam {
namespace {

std::string fixture(const std::string& name) {
  return std::string(AMALGAM_SOURCE_DIR) + "/tests/fixtures/recipes/" + name;
}

// Parses `text`, expects Error(Recipe) "<string>:LINE: ...containing `needle`...".
void expect_recipe_error(const std::string& text, int line, const std::string& needle) {
  try {
    parse_recipe_text(text);
    FAIL() << "no error for:\n" << text;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Recipe) << e.what();
    std::string msg = e.what();
    std::string prefix = "<string>:" + std::to_string(line) + ": ";
    EXPECT_EQ(msg.rfind(prefix, 0), 0u) << "expected prefix '" << prefix << "' in: " << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << "expected '" << needle << "' in: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "message is not one line: " << msg;
  }
}

const ParamSetting& param(const ParamMap& m, const std::string& key) {
  for (const auto& [k, v] : m)
    if (k == key) return v;
  throw std::runtime_error("no parameter " + key);
}

TEST(Recipe, TiesFixtureWithGradients) {
  Recipe r = parse_recipe_file(fixture("ties_gradients.yaml"));
  EXPECT_EQ(r.merge_method, "ties");
  EXPECT_EQ(r.merge_method_line, 14);
  ASSERT_TRUE(r.base_model);
  EXPECT_EQ(*r.base_model, "mistralai/Mistral-7B-v0.1");
  ASSERT_EQ(r.models.size(), 3u);
  EXPECT_FALSE(r.uses_slices());
  EXPECT_EQ(r.models[0].line, 4);
  EXPECT_TRUE(r.models[0].parameters.empty());
  EXPECT_EQ(r.models[1].model, "OpenPipe/mistral-ft-optimized-1218");
  EXPECT_EQ(param(r.models[1].parameters, "density").value, (std::vector<double>{1, 0.7, 0.1}));
  EXPECT_EQ(param(r.models[1].parameters, "density").line, 8);
  EXPECT_EQ(param(r.models[2].parameters, "weight").value, (std::vector<double>{0, 0.3, 0.7, 1}));
  EXPECT_EQ(param(r.parameters, "normalize").value, std::vector<double>{1.0});
  EXPECT_EQ(param(r.parameters, "int8_mask").value, std::vector<double>{1.0});
  EXPECT_EQ(r.dtype, "float16");
  EXPECT_FALSE(r.out_dtype);
  EXPECT_NE(r.text.find("merge_method: ties"), std::string::npos);
  EXPECT_EQ(r.path, fixture("ties_gradients.yaml"));
}

TEST(Recipe, SlerpFixtureWithFilterLists) {
  Recipe r = parse_recipe_file(fixture("slerp_filters.yaml"));
  EXPECT_TRUE(r.uses_slices());
  ASSERT_EQ(r.slices.size(), 1u);
  ASSERT_EQ(r.slices[0].sources.size(), 2u);
  EXPECT_EQ(r.slices[0].sources[1].layer_range, std::make_pair(0, 32));
  const ParamSetting& t = param(r.parameters, "t");
  ASSERT_EQ(t.filters.size(), 3u);
  EXPECT_EQ(t.filters[0].filter, "self_attn");
  EXPECT_EQ(t.filters[0].line, 13);
  EXPECT_EQ(t.filters[1].value, (std::vector<double>{1, 0.5, 0.7, 0.3, 0}));
  EXPECT_FALSE(t.filters[2].filter);
  EXPECT_EQ(r.dtype, "bfloat16");
  // Layer 0 of 32 (t = 0), the last layer (t = 1), a norm (no filter matches).
  EXPECT_DOUBLE_EQ(*evaluate_setting(t, "model.layers.0.self_attn.q_proj.weight", 0.0), 0.0);
  EXPECT_DOUBLE_EQ(*evaluate_setting(t, "model.layers.31.mlp.up_proj.weight", 1.0), 0.0);
  EXPECT_DOUBLE_EQ(*evaluate_setting(t, "model.layers.31.mlp.up_proj.weight", 0.0), 1.0);
  EXPECT_DOUBLE_EQ(*evaluate_setting(t, "model.norm.weight", 0.3), 0.5);
}

TEST(Recipe, PassthroughFixture) {
  Recipe r = parse_recipe_file(fixture("passthrough_frankenmerge.yaml"));
  EXPECT_EQ(r.merge_method, "passthrough");
  ASSERT_EQ(r.slices.size(), 2u);
  EXPECT_EQ(r.slices[0].sources[0].layer_range, std::make_pair(0, 24));
  EXPECT_EQ(r.slices[1].sources[0].layer_range, std::make_pair(8, 32));
  EXPECT_EQ(r.slices[1].line, 7);
  EXPECT_FALSE(r.base_model);
}

TEST(Recipe, DareTiesFixtureDtypesAndTokenizerSource) {
  Recipe r = parse_recipe_file(fixture("dare_ties_tokenizer.yaml"));
  EXPECT_EQ(r.dtype, "bfloat16");
  EXPECT_EQ(r.out_dtype, "float16");
  EXPECT_EQ(r.tokenizer_source, "base");
  EXPECT_FALSE(r.tokenizer);
  EXPECT_EQ(r.tokenizer_line, 19);
  EXPECT_EQ(r.models[2].model, "Qwen/Qwen2.5-Coder-7B");
  EXPECT_TRUE(r.models[2].parameters.empty());
  EXPECT_DOUBLE_EQ(param(r.parameters, "weight").value[0], 0.3);
}

TEST(Recipe, LinearFixtureTokenizerSectionAndQuotedFilter) {
  Recipe r = parse_recipe_file(fixture("linear_scale_filters.yaml"));
  ASSERT_TRUE(r.tokenizer);
  EXPECT_EQ(r.tokenizer->source, "org/model-a");
  EXPECT_EQ(r.chat_template, "chatml");
  const ParamSetting& w = param(r.models[1].parameters, "weight");
  EXPECT_DOUBLE_EQ(*evaluate_setting(w, "model.layers.3.self_attn.o_proj.weight", 0.5), 0.5);
  EXPECT_DOUBLE_EQ(*evaluate_setting(w, "model.layers.3.self_attn.q_proj.weight", 0.5), 1.0);
}

TEST(Recipe, TokenizerSectionDefaultsToUnion) {
  Recipe r = parse_recipe_text(
      "merge_method: linear\nmodels:\n  - model: a\n"
      "tokenizer:\n  pad_to_multiple_of: 64\n");
  ASSERT_TRUE(r.tokenizer);
  EXPECT_EQ(r.tokenizer->source, "union");
  EXPECT_EQ(r.tokenizer->pad_to_multiple_of, 64);
  EXPECT_EQ(r.tokenizer->line, 4);
}

TEST(Recipe, ValueForms) {
  Recipe r = parse_recipe_text(
      "merge_method: ties\n"
      "base_model: b\n"
      "models:\n"
      "  - model: a\n"
      "    parameters:\n"
      "      weight: 1\n"        // integer
      "      density: '0.25'\n"  // quoted numeric string (pydantic coerces it)
      "      flag_a: false\n"
      "      flag_b: yes\n"  // YAML 1.1 boolean, as PyYAML reads it
      "      g: [1, true, -2.5e-1]\n"
      "parameters:\n");
  const auto& p = r.models[0].parameters;
  ASSERT_EQ(p.size(), 5u);
  EXPECT_EQ(p[0].first, "weight");  // recipe order is kept
  EXPECT_EQ(param(p, "weight").value, std::vector<double>{1.0});
  EXPECT_EQ(param(p, "density").value, std::vector<double>{0.25});
  EXPECT_EQ(param(p, "flag_a").value, std::vector<double>{0.0});
  EXPECT_EQ(param(p, "flag_b").value, std::vector<double>{1.0});
  EXPECT_EQ(param(p, "g").value, (std::vector<double>{1.0, 1.0, -0.25}));
  EXPECT_TRUE(r.parameters.empty());
}

// ---- errors: each names its line ----

TEST(RecipeErrors, UnknownTopLevelKey) {
  expect_recipe_error("merge_method: linear\nmodels:\n  - model: a\nmerge_methd: ties\n", 4,
                      "unknown key 'merge_methd'");
}

TEST(RecipeErrors, UnknownKeyInModelEntryAndSlice) {
  expect_recipe_error(
      "merge_method: linear\nmodels:\n  - model: a\n    paramters:\n      weight: 1\n", 4,
      "unknown key 'paramters'");
  expect_recipe_error(
      "merge_method: passthrough\nslices:\n  - sources:\n      - model: a\n"
      "        layer_range: [0, 2]\n    residual_weight: 0.5\n",
      6, "unknown key 'residual_weight'");
  expect_recipe_error("merge_method: linear\nmodels:\n  - model: a\n    layer_range: [0, 2]\n", 4,
                      "unknown key 'layer_range'");
}

TEST(RecipeErrors, WrongTypes) {
  expect_recipe_error(
      "merge_method: linear\nmodels:\n  - model: a\n    parameters:\n      weight: heavy\n", 5,
      "got the string 'heavy'");
  // mergekit-legacy writes this; no method reads it and the schema rejects strings.
  expect_recipe_error(
      "merge_method: ties\nbase_model: a\nmodels:\n  - model: a\nparameters:\n"
      "  consensus_method: count\n",
      6, "parameter 'consensus_method'");
  expect_recipe_error("merge_method: linear\nmodels: a\n", 2, "models: expected a non-empty list");
  expect_recipe_error("merge_method: [linear]\nmodels:\n  - model: a\n", 1,
                      "merge_method: expected a string");
  expect_recipe_error(
      "merge_method: linear\nmodels:\n  - model: a\n    parameters:\n      weight: [1, [2]]\n", 5,
      "a gradient must be a list of numbers");
  expect_recipe_error(
      "merge_method: linear\nmodels:\n  - model: a\n    parameters:\n      weight: []\n", 5,
      "empty list");
  expect_recipe_error(
      "merge_method: linear\nmodels:\n  - model: a\n    parameters:\n      weight:\n", 5,
      "missing value");
  expect_recipe_error(
      "merge_method: linear\nmodels:\n  - model: a\n    parameters:\n      weight: .nan\n", 5,
      "not a finite number");
  expect_recipe_error(
      "merge_method: passthrough\nslices:\n  - sources:\n      - model: a\n"
      "        layer_range: [0, two]\n",
      5, "expected an integer");
  expect_recipe_error(
      "merge_method: linear\nmodels:\n  - model: a\nparameters:\n  w:\n    - filter: x\n"
      "      value: 1\n    - 0.5\n",
      8, "only {filter, value} entries");
  expect_recipe_error(
      "merge_method: linear\nmodels:\n  - model: a\nparameters:\n  w:\n    - filter: x\n"
      "      valeu: 1\n",
      7, "unknown key 'valeu'");
}

TEST(RecipeErrors, OutOfRangeLayerRange) {
  expect_recipe_error(
      "merge_method: passthrough\nslices:\n  - sources:\n      - model: a\n"
      "        layer_range: [4, 2]\n",
      5, "layer_range: [4, 2] is empty");
  expect_recipe_error(
      "merge_method: passthrough\nslices:\n  - sources:\n      - model: a\n"
      "        layer_range: [-1, 2]\n",
      5, "layer_range");
  expect_recipe_error(
      "merge_method: passthrough\nslices:\n  - sources:\n      - model: a\n"
      "        layer_range: [0, 1, 2]\n",
      5, "expected [first, end]");
}

TEST(RecipeErrors, MissingModel) {
  expect_recipe_error(
      "merge_method: linear\nmodels:\n  - parameters:\n      weight: 1\n  - model: b\n", 3,
      "no 'model:'");
  expect_recipe_error("merge_method: passthrough\nslices:\n  - sources:\n      - model: a\n", 4,
                      "source 'a' has no layer_range");
  expect_recipe_error("merge_method: linear\nmodels:\n  - model:\n", 3, "model: expected a string");
  expect_recipe_error("merge_method: linear\n", 1, "needs models: or slices:");
  expect_recipe_error("models:\n  - model: a\n", 1, "missing merge_method");
  expect_recipe_error("merge_method: passthrough\nslices:\n  - parameters: {}\n", 3,
                      "slice has no 'sources:'");
}

TEST(RecipeErrors, UnknownMethodListsKnownOnes) {
  expect_recipe_error("merge_method: tise\nmodels:\n  - model: a\n", 1,
                      "unknown method 'tise' (known: ");
  expect_recipe_error(
      "merge_method: linear\nslices:\n  - sources:\n      - model: a\n        layer_range: "
      "[0, 1]\n    merge_method: foo\n",
      6, "unknown method 'foo'");
}

TEST(RecipeErrors, BadDtype) {
  expect_recipe_error("merge_method: linear\nmodels:\n  - model: a\ndtype: bf16\n", 4,
                      "unsupported dtype 'bf16'");
  expect_recipe_error("merge_method: linear\nmodels:\n  - model: a\nout_dtype: torch.float64\n", 4,
                      "unsupported dtype 'torch.float64'");
}

TEST(RecipeErrors, BothTokenizerKeys) {
  expect_recipe_error(
      "merge_method: linear\nmodels:\n  - model: a\ntokenizer_source: base\n"
      "tokenizer:\n  source: base\n",
      5, "either tokenizer_source: or tokenizer:");
}

TEST(Recipe, TokenizerTokens) {
  Recipe r = parse_recipe_text(
      "merge_method: linear\nmodels:\n  - model: a\ntokenizer:\n  source: base\n  tokens:\n"
      "    x: {source: a}\n"
      "    <|im_end|>:\n      source: {kind: model_token, model: b, token: </s>}\n      force: true\n"
      "    y:\n      source: {kind: model_token, model: b, token_id: 7}\n"
      "    z: {source: {kind: zero}}\n"
      "    w:\n");
  ASSERT_TRUE(r.tokenizer);
  const auto& t = r.tokenizer->tokens;
  ASSERT_EQ(t.size(), 5u);
  EXPECT_EQ(t[0].token, "x");
  EXPECT_EQ(t[0].source, TokenSpec::Source::Model);
  EXPECT_EQ(t[0].model, "a");
  EXPECT_EQ(t[1].token, "<|im_end|>");
  EXPECT_EQ(t[1].source, TokenSpec::Source::ModelToken);
  EXPECT_EQ(t[1].source_token, "</s>");
  EXPECT_TRUE(t[1].force);
  EXPECT_EQ(t[1].line, 8);
  EXPECT_EQ(t[2].source_token_id, 7);
  EXPECT_EQ(t[3].source, TokenSpec::Source::Zero);
  EXPECT_EQ(t[4].source, TokenSpec::Source::Default);
}

TEST(RecipeErrors, TokenizerTokens) {
  const std::string head = "merge_method: linear\nmodels:\n  - model: a\ntokenizer:\n  tokens:\n";
  expect_recipe_error(head + "    x: 3\n", 6, "tokenizer.tokens.x: expected a mapping");
  expect_recipe_error(head + "    x: {force: maybe}\n", 6, "tokenizer.tokens.x.force: expected true or false");
  expect_recipe_error(head + "    x: {source: {kind: model_token, model: b}}\n", 6,
                      "needs exactly one of 'token' and 'token_id'");
  expect_recipe_error(head + "    x: {source: {kind: zero, model: b}}\n", 6, "unknown key 'model'");
  expect_recipe_error(head + "    x: {source: {kind: model_token, token: t}}\n", 6, "model_token needs 'model'");
  expect_recipe_error(head + "    x: {src: a}\n", 6, "unknown key 'src'");
}

TEST(RecipeErrors, FilterMappingNotInAList) {
  expect_recipe_error(
      "merge_method: slerp\nbase_model: a\nmodels:\n  - model: a\n  - model: b\n"
      "parameters:\n  t:\n    filter: self_attn\n    value: 0.5\n",
      8, "must be written as a list entry");
}

TEST(RecipeErrors, ModulesBothFormsDuplicatesAndSyntax) {
  expect_recipe_error("merge_method: linear\nmodules:\n  text: {}\n", 2,
                      "modules: is not supported");
  expect_recipe_error(
      "merge_method: linear\nmodels:\n  - model: a\nslices:\n  - sources:\n      - model: a\n"
      "        layer_range: [0, 1]\n",
      4, "not both");
  expect_recipe_error("merge_method: linear\nmodels:\n  - model: a\nmerge_method: ties\n", 4,
                      "given twice");
  expect_recipe_error(
      "merge_method: linear\nmodels:\n  - model: a\n    parameters:\n      weight: 1\n"
      "      weight: 2\n",
      6, "given twice");
  expect_recipe_error("merge_method: linear\nmodels:\n  - model: a\n   bad: [\n", 4,
                      "invalid YAML");
  expect_recipe_error("- just\n- a list\n", 1, "must be a YAML mapping");
  expect_recipe_error("", 1, "must be a YAML mapping");
}

TEST(RecipeErrors, FileErrorsAreIo) {
  try {
    parse_recipe_file("/nonexistent/recipe.yaml");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/recipe.yaml"), std::string::npos);
  }
}

// ---- METHODS.md §7: gradient and filter-list rows ----

TEST(EvaluateSetting, Section7GradientRows) {
  ParamSetting g1{{0.2, 0.8, 0.4}, {}, 1};
  ParamSetting g2{{0, 1}, {}, 1};
  const double expect1[] = {0.2, 0.5, 0.8, 0.6, 0.4};
  const double expect2[] = {0.0, 0.25, 0.5, 0.75, 1.0};
  for (int idx = 0; idx < 5; ++idx) {
    double t = idx / 4.0;  // layers 0..4 of a 5-layer slice
    EXPECT_NEAR(*evaluate_setting(g1, "x", t), expect1[idx], 1e-12) << idx;
    EXPECT_NEAR(*evaluate_setting(g2, "x", t), expect2[idx], 1e-12) << idx;
  }
  // [a] is constant; t = 1 gives the last element.
  ParamSetting c{{0.7}, {}, 1};
  EXPECT_DOUBLE_EQ(*evaluate_setting(c, "x", 0.0), 0.7);
  EXPECT_DOUBLE_EQ(*evaluate_setting(c, "x", 1.0), 0.7);
  ParamSetting g4{{1, 0.7, 0.1, 3}, {}, 1};
  EXPECT_DOUBLE_EQ(*evaluate_setting(g4, "x", 1.0), 3.0);
  EXPECT_DOUBLE_EQ(*evaluate_setting(g4, "x", 0.0), 1.0);
}

TEST(EvaluateSetting, Section7FilterListRows) {
  Recipe r = parse_recipe_text(
      "merge_method: slerp\nbase_model: a\nmodels:\n  - model: a\n  - model: b\n"
      "parameters:\n  t:\n    - filter: self_attn\n      value: [0, 1]\n"
      "    - filter: mlp\n      value: 0.3\n    - value: 0.5\n");
  const ParamSetting& t = param(r.parameters, "t");
  EXPECT_NEAR(*evaluate_setting(t, "model.layers.3.self_attn.q_proj.weight", 0.75), 0.75, 1e-12);
  EXPECT_NEAR(*evaluate_setting(t, "model.layers.3.mlp.up_proj.weight", 0.75), 0.3, 1e-12);
  EXPECT_NEAR(*evaluate_setting(t, "model.layers.3.input_layernorm.weight", 0.75), 0.5, 1e-12);
}

TEST(EvaluateSetting, FilterSemantics) {
  ParamSetting s;
  s.filters.push_back({std::string("mlp"), {2.0}, 1});
  s.filters.push_back({std::string("layers.1."), {3.0}, 2});
  // First match wins, substring (not pattern) matching, no match = unset.
  EXPECT_EQ(evaluate_setting(s, "model.layers.1.mlp.down_proj.weight", 0), 2.0);
  EXPECT_EQ(evaluate_setting(s, "model.layers.1.self_attn.o_proj.weight", 0), 3.0);
  EXPECT_EQ(evaluate_setting(s, "model.layers.10.self_attn.o_proj.weight", 0), std::nullopt);
  EXPECT_EQ(evaluate_setting(s, "model.norm.weight", 0), std::nullopt);
  s.filters.push_back({std::string("*"), {4.0}, 3});
  EXPECT_EQ(evaluate_setting(s, "model.norm.weight", 0), 4.0);
  // A gradient inside a filter entry interpolates at the same t.
  ParamSetting g;
  g.filters.push_back({std::string("attn"), {0.0, 1.0, 0.0}, 1});
  EXPECT_DOUBLE_EQ(*evaluate_setting(g, "h.0.attn.c_attn.weight", 0.25), 0.5);
  EXPECT_DOUBLE_EQ(*evaluate_setting(g, "h.0.attn.c_attn.weight", 0.5), 1.0);
}

}  // namespace
}  // namespace amalgam
