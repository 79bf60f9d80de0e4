// TensorMerger::accumulate_bf16 + merge_bf16 (methods/method.h) against accumulate +
// merge() rounded to bf16: the same bits for every method that has them, on tensors whose magnitude cuts fall inside a tile
// (ties at the threshold), DELLA rows (1-D, 2-D, strided 3-D), several blocks, and chunks
// of one block or several; and `false` exactly where merge() has a non-finite result.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kernels/convert.h"
#include "methods/test_util.h"

namespace amalgam {
namespace {
using namespace testing_util;
using Params = std::map<std::string, double>;

struct Paths {
  std::vector<uint16_t> f32_path, bf16_path;
  bool all_finite = true;  // every merge_bf16 call returned true
  bool f32_finite = true;  // every merge() result was finite
};

// Drives the merger as the executor does (sample, statistics passes, then every chunk),
// and merges each chunk both ways. `inputs` hold bf16 values.
Paths both_paths(const char* method, const TensorJob& job, const std::vector<std::vector<float>>& inputs,
                 uint64_t chunk_elements) {
  const uint64_t n = job.numel();
  auto merger = find_method(method)->create(job);
  EXPECT_TRUE(merger->has_bf16_merge()) << method;
  const bool gta = std::string(method) != "linear";
  std::vector<std::vector<uint16_t>> bits(inputs.size(), std::vector<uint16_t>(n));
  for (size_t i = 0; i < inputs.size(); ++i) from_f32(DType::BF16, inputs[i].data(), bits[i].data(), n);
  const uint64_t block = reduction_block(merger->row_length());
  const uint64_t chunk = (std::max<uint64_t>(chunk_elements, 1) + block - 1) / block * block;
  std::vector<const float*> ptrs(inputs.size());
  std::vector<const uint16_t*> raw(inputs.size());
  auto f32_chunk = [&](uint64_t begin, uint64_t count) {
    for (size_t i = 0; i < inputs.size(); ++i) ptrs[i] = inputs[i].data() + begin;
    return Chunk{begin, count, std::span<const float* const>(ptrs.data(), ptrs.size())};
  };
  auto bf16_chunk = [&](uint64_t begin, uint64_t count) {
    for (size_t i = 0; i < inputs.size(); ++i) raw[i] = bits[i].data() + begin;
    return Bf16Chunk{begin, count, std::span<const uint16_t* const>(raw.data(), raw.size())};
  };
  // `merger` takes the f32 statistics passes, `twin` the bf16 ones (accumulate_bf16).
  auto twin = find_method(method)->create(job);
  EXPECT_EQ(twin->has_bf16_accumulate(), gta) << method;  // linear has no statistics passes
  for (TensorMerger* t : {merger.get(), twin.get()}) {
    if (const uint64_t want = t->sample_elements()) {
      for (const auto& [begin, count] : sample_pieces(n, want)) t->observe_sample(f32_chunk(begin, count));
      t->sample_done();
    }
  }
  for (int pass = 0; pass < merger->stat_passes(); ++pass) {
    for (uint64_t c = 0; c < n; c += chunk) merger->accumulate(pass, f32_chunk(c, std::min(chunk, n - c)));
    merger->finish_pass(pass);
  }
  for (int pass = 0; pass < twin->stat_passes(); ++pass) {
    for (uint64_t c = 0; c < n; c += chunk) twin->accumulate_bf16(pass, bf16_chunk(c, std::min(chunk, n - c)));
    twin->finish_pass(pass);
  }
  Paths p;
  p.f32_path.resize(n);
  p.bf16_path.resize(n);
  std::vector<float> out(chunk);
  for (uint64_t c = 0; c < n; c += chunk) {
    const uint64_t count = std::min(chunk, n - c);
    merger->merge(f32_chunk(c, count), out.data());
    p.f32_finite &= !any_nonfinite(out.data(), count);
    from_f32(DType::BF16, out.data(), p.f32_path.data() + c, count);
    p.all_finite &= twin->merge_bf16(bf16_chunk(c, count), p.bf16_path.data() + c);
  }
  return p;
}

struct Case {
  const char* method;
  int base;
  Params mp, p;
};

std::vector<Case> cases() {
  const Params w_d = {{"weight", 0.7}, {"density", 0.5}};
  return {
      {"linear", -1, {{"weight", 0.3}}, {}},
      {"linear", -1, {{"weight", 1.0}}, {{"normalize", 0}}},
      {"task_arithmetic", 0, {{"weight", 0.7}}, {}},
      {"task_arithmetic", 0, {{"weight", 0.7}}, {{"normalize", 1}, {"lambda", 0.8}}},
      {"ties", 0, w_d, {}},
      {"ties", 0, {{"weight", 0.7}}, {}},  // density 1: sign election only
      {"ties", 0, w_d, {{"rescale", 1}, {"lambda", 1.3}}},
      {"dare_ties", 0, w_d, {}},
      {"dare_linear", 0, w_d, {}},
      {"dare_linear", 0, {{"weight", 0.7}}, {}},  // density 1: task arithmetic
      {"breadcrumbs", 0, {{"weight", 0.7}, {"density", 0.8}, {"gamma", 0.05}}, {}},
      {"breadcrumbs_ties", 0, {{"weight", 0.7}, {"density", 0.8}, {"gamma", 0.05}}, {}},
      {"della", 0, {{"weight", 0.7}, {"density", 0.5}, {"epsilon", 0.1}}, {}},
      {"della_linear", 0, {{"weight", 0.7}, {"density", 0.5}, {"epsilon", 0.1}}, {}},
      {"della", 0, {{"weight", 0.7}}, {}},  // density 1: no pruning, rows of any length
      // density 1 without consensus: task arithmetic in tiles longer than DELLA's rows
      // (its scratch was sized by the row: an overflow before 2026-12-03)
      {"della_linear", 0, {{"weight", 0.7}}, {}},
  };
}

TEST(Bf16Merge, EqualsMergeRoundedToBf16) {
  // Shapes: one tile, several blocks (a tie cut inside one of them), DELLA rows and a
  // strided 3-D layout.
  const std::vector<std::vector<int64_t>> shapes = {{700}, {150000}, {37, 300}, {6, 40, 7}};
  for (const Case& c : cases()) {
    for (const auto& shape : shapes) {
      for (int coarse = 0; coarse < 2; ++coarse) {
        TensorJob job = make_job(shape, 4, c.base, {c.mp, c.mp, c.mp, c.mp}, c.p);
        job.seed = 11;
        auto in = random_models(4, job.numel(), 7 + shape.size(), 0.05f, true);
        if (coarse) {
          // Few distinct magnitudes: many keys equal the magnitude threshold, so the
          // tie cut (by rank) falls inside a tile.
          // Multiples of 1/16 below 9 in magnitude: exact in bf16.
          for (size_t i = 0; i < in[0].size(); ++i) {
            const float b = 0.0625f * std::round(in[0][i] * 16.0f);
            for (size_t m = 1; m < in.size(); ++m) in[m][i] = b + 0.0625f * std::round((in[m][i] - in[0][i]) * 40.0f);
            in[0][i] = b;
          }
        }
        for (uint64_t chunk : {uint64_t{1}, uint64_t{1} << 20}) {
          const Paths p = both_paths(c.method, job, in, chunk);
          SCOPED_TRACE(::testing::Message() << c.method << " shape[0] " << shape[0] << " dims " << shape.size()
                                            << " coarse " << coarse << " chunk " << chunk);
          EXPECT_TRUE(p.all_finite);
          EXPECT_TRUE(p.f32_path == p.bf16_path);
        }
      }
    }
  }
}

// An Inf input: merge_bf16 says false exactly when merge() has a non-finite result (a
// dropped Inf gives NaN * 0 terms that consensus leaves out, so some methods stay finite).
TEST(Bf16Merge, ReturnsFalseWhenAResultIsNotFinite) {
  for (const Case& c : cases()) {
    TensorJob job = make_job({5000}, 4, c.base, {c.mp, c.mp, c.mp, c.mp}, c.p);
    auto in = random_models(4, job.numel(), 3, 0.05f, true);
    in[1][4321] = std::numeric_limits<float>::infinity();
    const Paths p = both_paths(c.method, job, in, 1 << 20);
    SCOPED_TRACE(c.method);
    EXPECT_EQ(p.all_finite, p.f32_finite);
    const std::string name = c.method;
    if (name == "linear" || name == "task_arithmetic") {
      EXPECT_FALSE(p.all_finite);
    }
    if (p.all_finite) {
      EXPECT_TRUE(p.f32_path == p.bf16_path);
    }
  }
}

TEST(Bf16Merge, F32ToBf16FiniteRoundsLikeFromF32) {
  std::vector<float> x = {0.0f, -0.0f, 1.0f, 1.00390625f, 1.01171875f, 3.4e38f, -3.4e38f, 1e-40f,
                          std::nanf("")};
  std::vector<uint16_t> a(x.size()), b(x.size());
  from_f32(DType::BF16, x.data(), a.data(), x.size());
  EXPECT_FALSE(f32_to_bf16_finite(x.data(), b.data(), x.size()));
  EXPECT_EQ(a, b);
  EXPECT_TRUE(f32_to_bf16_finite(x.data(), b.data(), x.size() - 1));  // 3.4e38 rounds to Inf: still finite in f32
  x.back() = -std::numeric_limits<float>::infinity();
  EXPECT_FALSE(f32_to_bf16_finite(x.data(), b.data(), x.size()));
}

}  // namespace
}  // namespace amalgam
