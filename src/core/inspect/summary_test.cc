#include "inspect/summary.h"

#include <gtest/gtest.h>

#include "inspect/test_models.h"

namespace amalgam::inspect {
namespace {

using testing::TestDir;
using testing::TestTensor;
using testing::write_test_model;

std::vector<TestTensor> tiny(int64_t vocab, int64_t hidden) {
  return {{"model.embed_tokens.weight", {vocab, hidden}, std::vector<float>(vocab * hidden, 0.5f), DType::BF16},
          {"model.layers.0.mlp.up_proj.weight", {8, hidden}, std::vector<float>(8 * hidden, 1.f), DType::BF16},
          {"model.layers.1.mlp.up_proj.weight", {8, hidden}, std::vector<float>(8 * hidden, 1.f), DType::BF16},
          {"model.norm.weight", {hidden}, std::vector<float>(hidden, 1.f), DType::F32}};
}

nlohmann::json config(int64_t vocab) {
  return {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"vocab_size", vocab}};
}

TEST(InspectSummary, CountsParamsDtypesShardsBytes) {
  TestDir tmp("summary");
  write_test_model(tmp.path / "m", tiny(32, 4), config(32), /*max_shard_bytes=*/200);
  auto m = ModelDir::open((tmp.path / "m").string());
  ModelSummary s = summarize(*m);
  EXPECT_EQ(s.architecture, "LlamaForCausalLM");
  EXPECT_EQ(s.model_type, "llama");
  EXPECT_EQ(s.params, 32u * 4 + 2 * 8 * 4 + 4);
  EXPECT_EQ(s.tensors, 4u);
  EXPECT_EQ(s.layers, 2);
  EXPECT_EQ(s.dtype_tensors.at("BF16"), 3u);
  EXPECT_EQ(s.dtype_params.at("BF16"), 32u * 4 + 2 * 8 * 4);
  EXPECT_EQ(s.dtype_tensors.at("F32"), 1u);
  EXPECT_EQ(s.tensor_bytes, (32u * 4 + 2 * 8 * 4) * 2 + 4 * 4);
  EXPECT_GT(s.shards, 1u);
  EXPECT_GT(s.file_bytes, s.tensor_bytes);
  ASSERT_TRUE(s.vocab_size);
  EXPECT_EQ(*s.vocab_size, 32);
  auto j = to_json(s);
  EXPECT_EQ(j["params"], s.params);
  EXPECT_EQ(j["dtypes"]["F32"]["tensors"], 1);
}

TEST(InspectCompat, FindsEveryKindOfMismatch) {
  TestDir tmp("compat");
  write_test_model(tmp.path / "a", tiny(32, 4), config(32));
  write_test_model(tmp.path / "same", tiny(32, 4), config(32));
  auto t = tiny(40, 4);  // bigger vocabulary: embedding shape differs
  t[3].dtype = DType::BF16;
  t.erase(t.begin() + 2);
  t.push_back({"model.layers.0.mlp.extra.weight", {2}, {1, 2}});
  write_test_model(tmp.path / "b", t, config(40));
  auto a = ModelDir::open((tmp.path / "a").string());
  auto same = ModelDir::open((tmp.path / "same").string());
  auto b = ModelDir::open((tmp.path / "b").string());

  CompatReport ok = check_compatibility({a.get(), same.get()});
  EXPECT_TRUE(ok.compatible());

  CompatReport r = check_compatibility({a.get(), same.get(), b.get()});
  EXPECT_FALSE(r.compatible());
  ASSERT_EQ(r.models.size(), 2u);
  EXPECT_TRUE(r.models[0].compatible());
  const CompatEntry& e = r.models[1];
  EXPECT_EQ(e.missing, std::vector<std::string>{"model.layers.1.mlp.up_proj.weight"});
  EXPECT_EQ(e.extra, std::vector<std::string>{"model.layers.0.mlp.extra.weight"});
  ASSERT_EQ(e.shape.size(), 1u);
  EXPECT_EQ(e.shape[0].tensor, "model.embed_tokens.weight");
  EXPECT_EQ(e.shape[0].reference, "[32, 4]");
  EXPECT_EQ(e.shape[0].other, "[40, 4]");
  ASSERT_EQ(e.dtype.size(), 1u);
  EXPECT_EQ(e.dtype[0].tensor, "model.norm.weight");
  EXPECT_FALSE(e.vocab_matches);
  auto j = to_json(r);
  EXPECT_EQ(j["compatible"], false);
  EXPECT_EQ(j["models"][1]["vocab_size"], 40);
}

TEST(InspectCompat, DtypeDifferencesAloneStayCompatible) {
  TestDir tmp("compat-dtype");
  auto t = tiny(16, 4);
  write_test_model(tmp.path / "a", t, config(16));
  for (auto& x : t) x.dtype = DType::F16;
  write_test_model(tmp.path / "b", t, config(16));
  auto a = ModelDir::open((tmp.path / "a").string());
  auto b = ModelDir::open((tmp.path / "b").string());
  CompatReport r = check_compatibility({a.get(), b.get()});
  EXPECT_TRUE(r.compatible());
  EXPECT_EQ(r.models[0].dtype.size(), 4u);
}

}  // namespace
}  // namespace amalgam::inspect
