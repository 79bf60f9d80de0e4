// Every method row of METHODS.md §7 (tests/fixtures/methods_vectors.json), run through
// merge_in_memory on 1 and 2 threads: values within the fixture's tolerance, and the
// same bits on both thread counts.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "methods/in_memory.h"
#include "methods/method.h"

namespace amalgam {
namespace {

using nlohmann::json;

json load_vectors() {
  std::ifstream in(std::string(AMALGAM_SOURCE_DIR) + "/tests/fixtures/methods_vectors.json");
  EXPECT_TRUE(in.good());
  return json::parse(in);
}

// Injected masks; also records the keep probabilities asked for (DELLA rows).
class FixedMasks : public MaskSource {
 public:
  explicit FixedMasks(std::vector<std::vector<int>> m) : masks_(std::move(m)) {}
  bool keep(size_t model, uint64_t index, double p) const override {
    probs_[{model, index}] = p;
    return masks_.at(model).at(index) != 0;
  }
  mutable std::map<std::pair<size_t, uint64_t>, double> probs_;

 private:
  std::vector<std::vector<int>> masks_;
};

struct Built {
  TensorJob job;
  std::vector<std::vector<float>> inputs;
  std::unique_ptr<FixedMasks> masks;
};

Built build(const json& doc, const json& c) {
  Built b;
  b.job.name = "model.layers.0.self_attn.q_proj.weight";
  for (auto& d : c["shape"]) b.job.shape.push_back(d.get<int64_t>());
  for (auto& name : c["inputs"]) {
    b.job.input_labels.push_back(name.get<std::string>());
    b.inputs.push_back(doc["tensors"][name.get<std::string>()].get<std::vector<float>>());
  }
  b.job.base = c["base"].get<int>();
  for (auto& mp : c["model_params"]) b.job.model_params.push_back(mp.get<std::map<std::string, double>>());
  b.job.params = c["params"].get<std::map<std::string, double>>();
  if (c.contains("masks")) {
    b.masks = std::make_unique<FixedMasks>(c["masks"].get<std::vector<std::vector<int>>>());
    b.job.masks = b.masks.get();
  }
  return b;
}

TEST(MethodVectors, EveryMethodRowOfSection7) {
  json doc = load_vectors();
  const double tol = doc["tolerance"].get<double>();
  int checked = 0;
  for (auto& c : doc["cases"]) {
    if (!c.contains("method")) continue;
    SCOPED_TRACE(c["case"].get<std::string>());
    const MergeMethod* m = find_method(c["method"].get<std::string>());
    ASSERT_NE(m, nullptr);
    Built b = build(doc, c);
    std::vector<float> got = merge_in_memory(*m, b.job, b.inputs, 8, 1);
    std::vector<float> got2 = merge_in_memory(*m, b.job, b.inputs, 1, 2);
    EXPECT_EQ(0, std::memcmp(got.data(), got2.data(), got.size() * 4));
    std::vector<double> want = c.value("amalgam_expected", c["expected"]).get<std::vector<double>>();
    if (c.value("kind", "") == "della_probabilities") {
      const size_t model = c["model"].get<size_t>();
      want = c["expected"].get<std::vector<double>>();
      for (size_t i = 0; i < want.size(); ++i) {
        auto it = b.masks->probs_.find({model, i});
        ASSERT_NE(it, b.masks->probs_.end());
        EXPECT_NEAR(it->second, want[i], tol) << "element " << i;
      }
      ++checked;
      continue;
    }
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
    ++checked;
  }
  EXPECT_EQ(checked, 45);
}

TEST(MethodVectors, RegistryHasEveryMergekitMethod) {
  const char* names[] = {"linear", "task_arithmetic", "ties", "dare_ties", "dare_linear", "breadcrumbs",
                         "breadcrumbs_ties", "della", "della_linear", "model_stock", "slerp", "nuslerp",
                         "multislerp", "karcher", "sce", "nearswap", "arcee_fusion", "passthrough", "ram",
                         "ramplus_tl"};
  for (const char* n : names) {
    const MergeMethod* m = find_method(n);
    ASSERT_NE(m, nullptr) << n;
    EXPECT_EQ(m->name(), n);
  }
  EXPECT_EQ(method_names().size(), 20u);
  EXPECT_EQ(find_method("frankenmerge"), nullptr);
}

TEST(MethodVectors, BreadcrumbsNTopZeroWarnsOnce) {
  json doc = load_vectors();
  for (auto& c : doc["cases"]) {
    if (!c.contains("amalgam_expected")) continue;
    Built b = build(doc, c);
    auto merger = find_method("breadcrumbs")->create(b.job);
    ASSERT_EQ(merger->warnings().size(), 1u);
    EXPECT_NE(merger->warnings()[0].find("n_top"), std::string::npos);
  }
}

}  // namespace
}  // namespace amalgam
