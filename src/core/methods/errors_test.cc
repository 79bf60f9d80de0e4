// Error cases: Error(Recipe) with a message naming the tensor and the method, raised by
// create() before any data is touched (or by the statistics pass for data-dependent
// cases such as model_stock's c = -1/(N-1)).
#include <gtest/gtest.h>

#include "methods/test_util.h"
#include "util/error.h"

namespace amalgam {
namespace {
using namespace testing_util;
using Params = std::map<std::string, double>;

void expect_recipe_error(const char* method, const TensorJob& job, const std::vector<std::vector<float>>& in,
                         const char* needle) {
  SCOPED_TRACE(std::string(method) + ": " + needle);
  try {
    merge_in_memory(*find_method(method), job, in);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Recipe);
    std::string msg = e.what();
    EXPECT_NE(msg.find(job.name), std::string::npos) << msg;
    EXPECT_NE(msg.find(method), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(MethodErrors, MagnitudeSelectionOfZeroElements) {
  auto in = random_models(3, 50, 1);
  auto j = make_job({50}, 3, 0, {{}, {{"weight", 1.0}, {"density", 0.01}}, {{"weight", 1.0}, {"density", 0.5}}});
  expect_recipe_error("ties", j, in, "k = floor");
  j.model_params[1]["density"] = 0.0;
  expect_recipe_error("ties", j, in, "k = floor");
}

TEST(MethodErrors, DellaDensityPlusMinusEpsilonOutsideUnitInterval) {
  auto in = random_models(2, 64, 2);
  auto j = make_job({8, 8}, 2, 0, {{}, {{"weight", 1.0}, {"density", 0.1}, {"epsilon", 0.15}}});
  expect_recipe_error("della", j, in, "epsilon");
  j.model_params[1]["density"] = 0.9;
  expect_recipe_error("della_linear", j, in, "epsilon");
  j.model_params[1]["epsilon"] = 0.05;
  EXPECT_NO_THROW(merge_in_memory(*find_method("della"), j, in));
}

TEST(MethodErrors, WrongInputCounts) {
  auto in3 = random_models(3, 16, 3);
  auto in2 = random_models(2, 16, 3);
  Params w = {{"weight", 1.0}};
  expect_recipe_error("slerp", make_job({16}, 3, 0, {}, {{"t", 0.5}}), in3, "exactly two");
  expect_recipe_error("nearswap", make_job({16}, 3, 0, {}, {{"t", 0.5}}), in3, "exactly one");
  expect_recipe_error("arcee_fusion", make_job({16}, 3, 0), in3, "exactly one");
  expect_recipe_error("passthrough", make_job({16}, 2, -1), in2, "exactly one");
  expect_recipe_error("model_stock", make_job({16}, 2, 0), in2, "at least 2");
  expect_recipe_error("nuslerp", make_job({16}, 3, -1, {w, w, w}), in3, "exactly two");
  expect_recipe_error("nuslerp", make_job({16}, 2, 0, {w, w}), in2, "three tensors");
  expect_recipe_error("ties", make_job({16}, 2, -1, {w, w}), in2, "base_model");
}

TEST(MethodErrors, ZeroWeightSumUnderNormalize) {
  auto in = random_models(2, 16, 4);
  auto j = make_job({16}, 2, -1, {{{"weight", 1.0}}, {{"weight", -1.0}}});
  expect_recipe_error("linear", j, in, "sum to 0");
  expect_recipe_error("multislerp", j, in, "sum to 0");
  j.params["normalize"] = 0;
  EXPECT_NO_THROW(merge_in_memory(*find_method("linear"), j, in));
}

TEST(MethodErrors, MissingRequiredWeight) {
  auto in = random_models(3, 16, 5);
  expect_recipe_error("linear", make_job({16}, 3, -1, {{{"weight", 1.0}}, {}, {{"weight", 1.0}}}), in,
                      "weight");
  expect_recipe_error("task_arithmetic", make_job({16}, 3, 0, {{}, {{"weight", 1.0}}, {}}), in, "weight");
}

TEST(MethodErrors, ModelStockInfiniteT) {
  // Two offsets pointing in opposite directions: c = -1 = -1/(N-1).
  std::vector<std::vector<float>> in(3, std::vector<float>(16, 0.0f));
  for (size_t i = 0; i < 16; ++i) {
    in[1][i] = 0.1f * (i + 1);
    in[2][i] = -0.1f * (i + 1);
  }
  expect_recipe_error("model_stock", make_job({16}, 3, 0), in, "infinite");
}

TEST(MethodErrors, KarcherAntipodalInputs) {
  std::vector<std::vector<float>> in(2, std::vector<float>(16));
  for (size_t i = 0; i < 16; ++i) {
    in[0][i] = 0.1f * (i + 1);
    in[1][i] = -in[0][i];
  }
  expect_recipe_error("karcher", make_job({16}, 2, -1), in, "antipodal");
}

}  // namespace
}  // namespace amalgam
