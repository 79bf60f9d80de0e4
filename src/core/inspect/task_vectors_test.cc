#include "inspect/task_vectors.h"

#include <cmath>
#include <map>
#include <random>

#include <gtest/gtest.h>

#include "inspect/test_models.h"
#include "util/error.h"

namespace amalgam::inspect {
namespace {

using testing::TestDir;
using testing::TestTensor;
using testing::write_test_model;

const std::vector<std::pair<std::string, std::vector<int64_t>>> kTensors = {
    {"model.embed_tokens.weight", {50, 8}},
    {"model.layers.0.self_attn.q_proj.weight", {8, 8}},
    {"model.layers.0.input_layernorm.weight", {8}},
    {"model.layers.1.mlp.up_proj.weight", {24, 8}},
    {"model.layers.10.mlp.up_proj.weight", {3, 5}},
    {"model.norm.weight", {8}},
    {"lm_head.weight", {50, 8}},
};

// Base values, and fine-tunes whose deltas are often exactly zero (so the "both
// non-zero" denominators matter) and sometimes shared.
struct Fixture {
  TestDir dir{"tv"};
  std::vector<std::vector<std::vector<float>>> values;  // [model][tensor][element], 0 = base
  Fixture(int models) {
    std::mt19937 rng(5);
    std::normal_distribution<float> normal(0, 1);
    std::uniform_int_distribution<int> pick(0, 3);
    values.resize(models + 1);
    for (int m = 0; m <= models; ++m) {
      std::vector<TestTensor> tensors;
      for (size_t t = 0; t < kTensors.size(); ++t) {
        uint64_t n = 1;
        for (auto d : kTensors[t].second) n *= d;
        std::vector<float> v(n);
        for (uint64_t i = 0; i < n; ++i) {
          if (m == 0) {
            v[i] = normal(rng);
          } else {
            const int kind = pick(rng);  // 0: unchanged, 1: shared-ish, 2-3: own delta
            const float shared = 0.1f * std::sin(static_cast<float>(i + t));
            v[i] = values[0][t][i] + (kind == 0 ? 0.f : kind == 1 ? shared : 0.1f * normal(rng));
          }
        }
        values[m].push_back(v);
        tensors.push_back({kTensors[t].first, kTensors[t].second, v});
      }
      write_test_model(dir.path / std::to_string(m), tensors, {{"vocab_size", 50}});
    }
  }
};

struct Ref {
  std::vector<double> norm;
  std::vector<std::vector<double>> cosine, conflict;
  double conflict_all;
};

// Dumb reference: collect each group's deltas whole, then loop.
Ref reference(const Fixture& f, const std::string& group) {
  const size_t m = f.values.size() - 1;
  std::vector<std::vector<double>> d(m);
  for (size_t t = 0; t < kTensors.size(); ++t) {
    if (group != "total" && tensor_group(kTensors[t].first, nullptr) != group) continue;
    for (size_t k = 0; k < m; ++k)
      for (size_t i = 0; i < f.values[0][t].size(); ++i)
        d[k].push_back(double(f.values[k + 1][t][i]) - double(f.values[0][t][i]));
  }
  Ref r;
  r.norm.resize(m);
  r.cosine.assign(m, std::vector<double>(m));
  r.conflict.assign(m, std::vector<double>(m));
  for (size_t a = 0; a < m; ++a) {
    double s = 0;
    for (double x : d[a]) s += x * x;
    r.norm[a] = std::sqrt(s);
  }
  for (size_t a = 0; a < m; ++a)
    for (size_t b = 0; b < m; ++b) {
      double dot = 0;
      uint64_t both = 0, dis = 0;
      for (size_t i = 0; i < d[a].size(); ++i) {
        dot += d[a][i] * d[b][i];
        if (d[a][i] != 0 && d[b][i] != 0) {
          ++both;
          if ((d[a][i] < 0) != (d[b][i] < 0)) ++dis;
        }
      }
      r.cosine[a][b] = dot / (r.norm[a] * r.norm[b]);
      r.conflict[a][b] = double(dis) / both;
    }
  uint64_t multi = 0, conflicting = 0;
  for (size_t i = 0; i < d[0].size(); ++i) {
    int nz = 0, pos = 0, neg = 0;
    for (size_t a = 0; a < m; ++a) nz += d[a][i] != 0, pos += d[a][i] > 0, neg += d[a][i] < 0;
    if (nz >= 2) ++multi, conflicting += pos && neg;
  }
  r.conflict_all = double(conflicting) / multi;
  return r;
}

TaskVectorReport run(const Fixture& f, int threads, uint64_t chunk) {
  auto base = ModelDir::open((f.dir.path / "0").string());
  std::vector<std::unique_ptr<ModelDir>> dirs;
  std::vector<const ModelDir*> models;
  for (size_t m = 1; m < f.values.size(); ++m) {
    dirs.push_back(ModelDir::open((f.dir.path / std::to_string(m)).string()));
    models.push_back(dirs.back().get());
  }
  TaskVectorOptions o;
  o.threads = threads;
  o.chunk_elements = chunk;
  return task_vector_stats(*base, models, o);
}

void expect_matches(const GroupStats& g, const Ref& r) {
  const size_t m = r.norm.size();
  for (size_t a = 0; a < m; ++a) {
    EXPECT_NEAR(g.norm[a], r.norm[a], 1e-12 * r.norm[a]) << g.group;
    for (size_t b = 0; b < m; ++b) {
      EXPECT_NEAR(g.cosine[a][b], r.cosine[a][b], 1e-12) << g.group << " " << a << "," << b;
      EXPECT_NEAR(g.conflict[a][b], r.conflict[a][b], 1e-15) << g.group << " " << a << "," << b;
    }
  }
  EXPECT_NEAR(g.conflict_all, r.conflict_all, 1e-15) << g.group;
}

TEST(TaskVectors, GroupsFromTensorNames) {
  int layer = 0;
  EXPECT_EQ(tensor_group("model.layers.12.mlp.up_proj.weight", &layer), "layer 12");
  EXPECT_EQ(layer, 12);
  EXPECT_EQ(tensor_group("transformer.h.3.attn.c_attn.bias", &layer), "layer 3");
  EXPECT_EQ(tensor_group("x.blocks.7.ffn.weight", &layer), "layer 7");
  EXPECT_EQ(tensor_group("transformer.wte.weight", &layer), "embed");
  EXPECT_EQ(layer, -1);
  EXPECT_EQ(tensor_group("model.embed_tokens.weight", nullptr), "embed");
  EXPECT_EQ(tensor_group("lm_head.weight", nullptr), "other");
  EXPECT_EQ(tensor_group("model.norm.weight", nullptr), "other");
}

TEST(TaskVectors, MatchDirectComputation) {
  Fixture f(3);
  TaskVectorReport r = run(f, 1, 1 << 20);
  ASSERT_EQ(r.groups.size(), 5u);
  EXPECT_EQ(r.groups[0].group, "embed");
  EXPECT_EQ(r.groups[1].group, "layer 0");
  EXPECT_EQ(r.groups[2].group, "layer 1");
  EXPECT_EQ(r.groups[3].group, "layer 10");
  EXPECT_EQ(r.groups[4].group, "other");
  EXPECT_EQ(r.groups[1].elements, 72u);
  EXPECT_EQ(r.total.elements, 400u + 72 + 192 + 15 + 8 + 400);
  for (const auto& g : r.groups) expect_matches(g, reference(f, g.group));
  expect_matches(r.total, reference(f, "total"));
  EXPECT_TRUE(r.skipped.empty());
  auto j = to_json(r);
  EXPECT_EQ(j["groups"].size(), 5u);
  EXPECT_NEAR(j["total"]["norm"][0].get<double>(), r.total.norm[0], 1e-15);
  EXPECT_NE(format_table(r).find("layer 10"), std::string::npos);
}

TEST(TaskVectors, ThreadsDoNotChangeResultsAndChunksBarely) {
  Fixture f(2);
  TaskVectorReport a = run(f, 1, 1 << 20), b = run(f, 4, 1 << 20), c = run(f, 3, 7);
  for (size_t g = 0; g < a.groups.size(); ++g) {
    EXPECT_EQ(a.groups[g].norm, b.groups[g].norm);
    EXPECT_EQ(a.groups[g].cosine, b.groups[g].cosine);
    expect_matches(c.groups[g], Ref{a.groups[g].norm, a.groups[g].cosine, a.groups[g].conflict,
                                    a.groups[g].conflict_all});
  }
  EXPECT_TRUE(std::isnan(a.total.conflict_all) == false);
}

TEST(TaskVectors, SkipsTensorsNotInEveryModel) {
  TestDir dir("tv-skip");
  write_test_model(dir.path / "base", {{"a.weight", {2}, {1, 2}}, {"b.weight", {2}, {1, 2}}},
                   nlohmann::json::object());
  write_test_model(dir.path / "m", {{"a.weight", {2}, {1, 3}}, {"b.weight", {3}, {1, 2, 3}}},
                   nlohmann::json::object());
  auto base = ModelDir::open((dir.path / "base").string());
  auto m = ModelDir::open((dir.path / "m").string());
  TaskVectorReport r = task_vector_stats(*base, {m.get()}, {});
  EXPECT_EQ(r.skipped, std::vector<std::string>{"b.weight"});
  EXPECT_DOUBLE_EQ(r.total.norm[0], 1.0);
  EXPECT_TRUE(std::isnan(r.total.conflict_all));  // one model: nothing to disagree with
  EXPECT_THROW(task_vector_stats(*base, {}, {}), Error);
}

}  // namespace
}  // namespace amalgam::inspect
