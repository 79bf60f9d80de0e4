// Same bits for any chunk size and thread count, for every method, on tensors spanning
// several reduction blocks, with f32 data and with bf16-rounded data (whose magnitude
// ties exercise the tie-rank pass of the radix select).
#include <gtest/gtest.h>

#include "methods/test_util.h"

namespace amalgam {
namespace {
using namespace testing_util;

struct Config {
  const char* method;
  size_t n_inputs;
  int base;
  std::map<std::string, double> model_params;  // given to every input
  std::map<std::string, double> params;
};

const std::vector<Config>& configs() {
  static const std::vector<Config> c = {
      {"linear", 4, -1, {{"weight", 0.7}}, {}},
      {"task_arithmetic", 4, 0, {{"weight", 0.7}}, {}},
      {"ties", 4, 0, {{"weight", 0.7}, {"density", 0.3}}, {}},
      {"ties", 4, 0, {{"weight", 0.7}, {"density", 0.3}}, {{"rescale", 1}}},
      {"dare_ties", 4, 0, {{"weight", 0.7}, {"density", 0.4}}, {}},
      {"dare_linear", 4, 0, {{"weight", 0.7}, {"density", 0.4}}, {}},
      {"breadcrumbs", 4, 0, {{"weight", 0.7}, {"density", 0.5}, {"gamma", 0.01}}, {}},
      {"breadcrumbs_ties", 4, 0, {{"weight", 0.7}, {"density", 0.5}, {"gamma", 0.05}}, {}},
      {"della", 4, 0, {{"weight", 0.7}, {"density", 0.5}, {"epsilon", 0.1}}, {}},
      {"della_linear", 4, 0, {{"weight", 0.7}, {"density", 0.5}, {"epsilon", 0.1}}, {}},
      {"model_stock", 4, 0, {}, {}},
      {"model_stock", 4, 0, {}, {{"filter_wise", 1}}},
      {"slerp", 2, 0, {}, {{"t", 0.3}}},
      {"nuslerp", 3, 0, {{"weight", 0.6}}, {}},
      {"nuslerp", 2, -1, {{"weight", 0.6}}, {{"nuslerp_flatten", 0}}},
      {"nuslerp", 2, -1, {{"weight", 0.6}}, {{"nuslerp_flatten", 0}, {"nuslerp_row_wise", 1}}},
      {"multislerp", 4, -1, {{"weight", 0.6}}, {}},
      {"multislerp", 4, 0, {{"weight", 0.6}}, {}},
      {"karcher", 4, -1, {}, {}},
      {"sce", 4, 0, {}, {}},
      {"sce", 4, 0, {}, {{"select_topk", 0.4}}},
      {"nearswap", 2, 0, {}, {{"t", 0.02}}},
      {"arcee_fusion", 2, 0, {}, {}},
      {"passthrough", 1, -1, {{"scale", 0.5}}, {}},
      {"ram", 4, 0, {}, {{"epsilon", 0.03}}},
      {"ramplus_tl", 4, 0, {}, {{"epsilon", 0.03}}},
  };
  return c;
}

void check_config(const Config& c, bool bf16) {
  SCOPED_TRACE(std::string(c.method) + (bf16 ? " bf16" : " f32"));
  const MergeMethod* m = find_method(c.method);
  ASSERT_NE(m, nullptr);
  // 280000 elements: 5 reduction blocks, and large enough for the selections to bracket
  // (kernels/radix_select.h).
  std::vector<int64_t> shape = {400, 700};
  auto job = make_job(shape, c.n_inputs, c.base,
                      std::vector<std::map<std::string, double>>(c.n_inputs, c.model_params), c.params);
  job.seed = 1234;
  auto inputs = random_models(c.n_inputs, job.numel(), 99, 0.05f, bf16);
  auto ref = merge_in_memory(*m, job, inputs, 1 << 20, 1);
  for (float v : ref) ASSERT_TRUE(std::isfinite(v));
  for (uint64_t chunk : {1ull, 2ull * 65536, 1ull << 22})
    for (int threads : {1, 3}) {
      auto got = merge_in_memory(*m, job, inputs, chunk, threads);
      EXPECT_TRUE(same_bits(got, ref)) << "chunk " << chunk << " threads " << threads;
    }
}

TEST(MethodDeterminism, SameBitsForAnyChunkingAndThreadsF32) {
  for (const auto& c : configs()) check_config(c, false);
}

TEST(MethodDeterminism, SameBitsForAnyChunkingAndThreadsBf16) {
  for (const auto& c : configs()) check_config(c, true);
}

// The executor reads stat_passes() once, before the first pass; mergers announce an upper
// bound and turn passes they turn out not to need into no-ops. Same bits either way.
std::vector<float> merge_with_cached_pass_count(const MergeMethod& m, const TensorJob& job,
                                                const std::vector<std::vector<float>>& in) {
  auto merger = m.create(job);
  const int passes = merger->stat_passes();
  const uint64_t n = job.numel(), block = reduction_block(merger->row_length());
  std::vector<const float*> ptrs(in.size());
  auto chunk_at = [&](uint64_t begin) {
    for (size_t i = 0; i < in.size(); ++i) ptrs[i] = in[i].data() + begin;
    return Chunk{begin, std::min(block, n - begin), std::span<const float* const>(ptrs.data(), ptrs.size())};
  };
  for (int p = 0; p < passes; ++p) {
    for (uint64_t b = 0; b < n; b += block) merger->accumulate(p, chunk_at(b));
    merger->finish_pass(p);
  }
  std::vector<float> out(n);
  for (uint64_t b = 0; b < n; b += block) merger->merge(chunk_at(b), out.data() + b);
  return out;
}

TEST(MethodDeterminism, CachedPassCountGivesSameBits) {
  for (const auto& c : configs()) {
    SCOPED_TRACE(c.method);
    const MergeMethod* m = find_method(c.method);
    auto job = make_job({200, 700}, c.n_inputs, c.base,
                        std::vector<std::map<std::string, double>>(c.n_inputs, c.model_params), c.params);
    for (bool bf16 : {false, true}) {
      auto inputs = random_models(c.n_inputs, job.numel(), 98, 0.05f, bf16);
      EXPECT_TRUE(same_bits(merge_with_cached_pass_count(*m, job, inputs), merge_in_memory(*m, job, inputs)));
    }
  }
}

TEST(MethodDeterminism, OneDimensionalTensors) {
  // 1-D: DELLA ranks the whole tensor as one row; arcee's KL is one scalar.
  for (const char* name : {"della", "arcee_fusion", "model_stock"}) {
    SCOPED_TRACE(name);
    size_t n_in = std::string(name) == "arcee_fusion" ? 2 : 3;
    auto job = make_job({70000}, n_in, 0,
                        std::vector<std::map<std::string, double>>(
                            n_in, {{"weight", 1.0}, {"density", 0.5}, {"epsilon", 0.1}}),
                        {{"filter_wise", 1}});
    auto inputs = random_models(n_in, job.numel(), 5);
    auto ref = merge_in_memory(*find_method(name), job, inputs, 1, 1);
    auto got = merge_in_memory(*find_method(name), job, inputs, 1, 2);
    EXPECT_TRUE(same_bits(got, ref));
  }
}

}  // namespace
}  // namespace amalgam
