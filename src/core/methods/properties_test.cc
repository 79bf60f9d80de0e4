// Properties every port of the methods must have (issue 4): a model merged with itself
// is itself; linear [1, 0] is model 1; ties without conflicts is task arithmetic; DARE at
// density 1 is its linear counterpart; slerp endpoints; DARE/DELLA statistics.
#include <gtest/gtest.h>

#include <cmath>

#include "methods/test_util.h"

namespace amalgam {
namespace {
using namespace testing_util;
using Params = std::map<std::string, double>;

std::vector<float> run(const char* method, const TensorJob& job, const std::vector<std::vector<float>>& in) {
  return merge_in_memory(*find_method(method), job, in, 1 << 16, 2);
}

TEST(MethodProperties, ModelMergedWithItselfIsItself) {
  struct C {
    const char* method;
    size_t n;
    int base;
    Params mp, p;
    bool exact;
  };
  const std::vector<C> cases = {
      {"linear", 3, -1, {{"weight", 0.5}}, {}, false},
      {"linear", 2, -1, {{"weight", 0.5}}, {}, true},
      {"task_arithmetic", 3, 0, {{"weight", 0.7}}, {}, true},
      {"ties", 3, 0, {{"weight", 0.7}, {"density", 0.5}}, {}, true},
      {"dare_ties", 3, 0, {{"weight", 0.7}, {"density", 0.5}}, {}, true},
      {"dare_linear", 3, 0, {{"weight", 0.7}, {"density", 0.5}}, {}, true},
      {"breadcrumbs", 3, 0, {{"weight", 0.7}, {"density", 0.5}}, {}, true},
      {"breadcrumbs_ties", 3, 0, {{"weight", 0.7}, {"density", 0.5}}, {}, true},
      {"della", 3, 0, {{"weight", 0.7}, {"density", 0.5}}, {}, true},
      {"della_linear", 3, 0, {{"weight", 0.7}, {"density", 0.5}}, {}, true},
      {"model_stock", 3, 0, {}, {}, true},
      {"model_stock", 3, 0, {}, {{"filter_wise", 1}}, true},
      {"slerp", 2, 0, {}, {{"t", 0.4}}, false},
      {"nuslerp", 2, -1, {{"weight", 0.5}}, {}, false},
      {"nuslerp", 3, 0, {{"weight", 0.5}}, {}, true},
      {"multislerp", 3, -1, {{"weight", 0.5}}, {}, false},
      {"karcher", 3, -1, {}, {}, false},
      {"sce", 3, 0, {}, {}, true},
      {"sce", 3, 0, {}, {{"select_topk", 0.5}}, true},
      {"nearswap", 2, 0, {}, {{"t", 0.1}}, true},
      {"arcee_fusion", 2, 0, {}, {}, true},
      {"ram", 3, 0, {}, {}, true},
      {"ramplus_tl", 3, 0, {}, {}, true},
      {"passthrough", 1, -1, {}, {}, true},
  };
  auto x = random_models(1, 100000, 3)[0];
  for (const auto& c : cases) {
    SCOPED_TRACE(c.method);
    auto job = make_job({200, 500}, c.n, c.base, std::vector<Params>(c.n, c.mp), c.p);
    std::vector<std::vector<float>> in(c.n, x);
    auto out = run(c.method, job, in);
    if (c.exact) {
      EXPECT_TRUE(same_bits(out, x));
    } else {
      for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(out[i], x[i], 4e-7f * (1 + std::fabs(x[i]))) << i;
    }
  }
}

TEST(MethodProperties, LinearOneZeroIsModelOneBitForBit) {
  auto in = random_models(2, 100000, 4);
  auto job = make_job({100000}, 2, -1, {{{"weight", 1.0}}, {{"weight", 0.0}}});
  EXPECT_TRUE(same_bits(run("linear", job, in), in[0]));
  job.params["normalize"] = 0;
  EXPECT_TRUE(same_bits(run("linear", job, in), in[0]));
}

TEST(MethodProperties, TiesWithoutConflictsIsTaskArithmetic) {
  auto in = random_models(4, 150000, 5);
  for (size_t m = 1; m < 4; ++m)
    for (size_t i = 0; i < in[0].size(); ++i) in[m][i] = in[0][i] + std::fabs(in[m][i] - in[0][i]) + 1e-3f;
  std::vector<Params> mp = {{}, {{"weight", 1.0}}, {{"weight", 0.5}}, {{"weight", 0.25}}};
  auto ties = make_job({150000}, 4, 0, mp, {{"normalize", 1}});
  auto ta = make_job({150000}, 4, 0, mp, {{"normalize", 1}});
  EXPECT_TRUE(same_bits(run("ties", ties, in), run("task_arithmetic", ta, in)));
  ties.params["normalize"] = 0;
  ta.params["normalize"] = 0;
  EXPECT_TRUE(same_bits(run("ties", ties, in), run("task_arithmetic", ta, in)));
}

// A selection pass reads the base and the models still selecting (TensorMerger::pass_reads):
// here the model at density 1 selects nothing. merge_in_memory hands null for the others,
// as the executor does, and a model that keeps everything merges as task arithmetic would.
TEST(MethodProperties, SelectionPassesReadOnlyTheModelsTheyRank) {
  auto in = random_models(3, 150000, 8);
  for (const char* method : {"ties", "breadcrumbs"}) {
    std::vector<Params> mp = {{}, {{"weight", 0.7}, {"density", 0.5}}, {{"weight", 0.4}, {"density", 1.0}}};
    const auto job = make_job({150000}, 3, 0, mp);
    auto merger = find_method(method)->create(job);
    ASSERT_GT(merger->stat_passes(), 0) << method;
    EXPECT_TRUE(merger->pass_reads(0, 0)) << method;
    EXPECT_TRUE(merger->pass_reads(0, 1)) << method;
    EXPECT_FALSE(merger->pass_reads(0, 2)) << method;
    // Input 2 reads as null in the selection passes; the merge is still the method's.
    const auto merged = run(method, job, in);
    std::vector<Params> mp0 = mp;
    mp0[2]["weight"] = 0.0;
    const auto without = run(method, make_job({150000}, 3, 0, mp0), in);
    size_t differ = 0;
    for (size_t i = 0; i < merged.size(); ++i) differ += merged[i] != without[i];
    EXPECT_GT(differ, merged.size() / 2) << method << ": model 2 must still count in the merge";
  }
}

TEST(MethodProperties, DareAtDensityOneIsItsLinearCounterpart) {
  auto in = random_models(4, 150000, 6);
  std::vector<Params> mp = {{}, {{"weight", 0.9}, {"density", 1.0}}, {{"weight", 0.4}, {"density", 1.0}},
                            {{"weight", 0.3}, {"density", 1.0}}};
  auto j = make_job({150000}, 4, 0, mp);
  EXPECT_TRUE(same_bits(run("dare_linear", j, in), run("task_arithmetic", j, in)));
  auto t = j;
  t.params["normalize"] = 0;
  EXPECT_TRUE(same_bits(run("dare_ties", j, in), run("ties", t, in)));
  EXPECT_TRUE(same_bits(run("della_linear", j, in), run("task_arithmetic", j, in)));
}

TEST(MethodProperties, SlerpEndpoints) {
  auto in = random_models(2, 100000, 7, 0.5f);
  auto j = make_job({100000}, 2, 0, {}, {{"t", 0.0}});
  EXPECT_TRUE(same_bits(run("slerp", j, in), in[0]));
  j.params["t"] = 1.0;
  EXPECT_TRUE(same_bits(run("slerp", j, in), in[1]));
}

// One model, weight 1, no normalize: out - base = delta * mask * (L1 rescale).
TEST(MethodProperties, DareKeepsDensityAndRestoresL1) {
  const size_t n = 1 << 20;
  auto in = random_models(2, n, 8);
  for (double rho : {0.1, 0.3, 0.7}) {
    auto j = make_job({static_cast<int64_t>(n)}, 2, 0, {{}, {{"weight", 1.0}, {"density", rho}}});
    auto out = run("dare_linear", j, in);
    double kept = 0, l1_in = 0, l1_out = 0, ratio = 0;
    for (size_t i = 0; i < n; ++i) {
      double d = static_cast<double>(in[1][i]) - in[0][i], e = static_cast<double>(out[i]) - in[0][i];
      l1_in += std::fabs(d);
      l1_out += std::fabs(e);
      if (std::fabs(e) > 0) {
        kept += 1;
        ratio += e / d;
      }
    }
    EXPECT_NEAR(kept / n, rho, 0.003) << rho;
    EXPECT_NEAR(ratio / kept, 1.0 / rho, 0.03 / rho) << rho;
    EXPECT_NEAR(l1_out / l1_in, 1.0, 1e-3) << rho;
    // A different seed gives a different mask; the same seed the same one.
    auto j2 = j;
    j2.seed = 77;
    EXPECT_FALSE(same_bits(run("dare_linear", j2, in), out));
    EXPECT_TRUE(same_bits(run("dare_linear", j, in), out));
  }
}

TEST(MethodProperties, DellaKeepsDensityAndPrefersLargeMagnitudes) {
  const int64_t rows = 512, cols = 1024;
  const size_t n = rows * cols;
  auto in = random_models(2, n, 9);
  auto j = make_job({rows, cols}, 2, 0, {{}, {{"weight", 1.0}, {"density", 0.4}, {"epsilon", 0.2}}});
  auto out = run("della_linear", j, in);
  // Keep rate of the top and bottom magnitude halves of each row: ~0.5 and ~0.3.
  double kept = 0, kept_hi = 0, kept_lo = 0;
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<float> mags(cols);
    for (int64_t c = 0; c < cols; ++c) mags[c] = std::fabs(in[1][r * cols + c] - in[0][r * cols + c]);
    std::vector<float> s = mags;
    std::nth_element(s.begin(), s.begin() + cols / 2, s.end());
    const float med = s[cols / 2];
    for (int64_t c = 0; c < cols; ++c) {
      bool k = out[r * cols + c] != in[0][r * cols + c];
      kept += k;
      (mags[c] >= med ? kept_hi : kept_lo) += k;
    }
  }
  EXPECT_NEAR(kept / n, 0.4, 0.004);
  EXPECT_NEAR(kept_hi / (n / 2), 0.5, 0.01);
  EXPECT_NEAR(kept_lo / (n / 2), 0.3, 0.01);
}

}  // namespace
}  // namespace amalgam
