#include "synth/values.h"

#include <cmath>

#include <gtest/gtest.h>

namespace amalgam::synth {
namespace {

const TensorSpec kMatrix{"model.layers.0.mlp.up_proj.weight", {256, 192}, TensorRole::Matrix};
const TensorSpec kNorm{"model.layers.0.input_layernorm.weight", {4096}, TensorRole::Norm};

std::vector<float> all(const TensorSpec& t, int model, uint64_t seed = 7) {
  std::vector<float> v(t.numel());
  TensorValues(seed, t, model).fill(0, v.size(), v.data());
  return v;
}

TEST(SynthValues, ChunkingDoesNotChangeValues) {
  for (int model : {0, 1, 3}) {
    std::vector<float> whole = all(kMatrix, model);
    TensorValues gen(7, kMatrix, model);
    std::vector<float> pieces(whole.size());
    // Odd chunk sizes that cut rows in the middle.
    for (uint64_t first = 0, step = 1; first < pieces.size(); first += step, step = step * 3 + 1) {
      const uint64_t n = std::min<uint64_t>(step, pieces.size() - first);
      gen.fill(first, n, pieces.data() + first);
    }
    EXPECT_EQ(whole, pieces) << "model " << model;
  }
}

TEST(SynthValues, SeedAndNameChangeValues) {
  EXPECT_NE(all(kMatrix, 0, 1), all(kMatrix, 0, 2));
  TensorSpec other = kMatrix;
  other.name = "model.layers.1.mlp.up_proj.weight";
  EXPECT_NE(all(kMatrix, 0), all(other, 0));
}

TEST(SynthValues, BaseLooksLikeRealWeights) {
  auto w = all(kMatrix, 0);
  double sum = 0, sq = 0;
  for (float x : w) sum += x, sq += double(x) * x;
  const double mean = sum / w.size(), sd = std::sqrt(sq / w.size() - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.001);
  EXPECT_NEAR(sd, 0.02, 0.001);
  auto n = all(kNorm, 0);
  double nsum = 0;
  for (float x : n) nsum += x;
  EXPECT_NEAR(nsum / n.size(), 1.0, 0.01);
}

// Fine-tunes share the base exactly and differ by small, partly shared deltas.
TEST(SynthValues, FineTuneDeltasAreRealistic) {
  auto base = all(kMatrix, 0), e1 = all(kMatrix, 1), e2 = all(kMatrix, 2);
  DeltaScales s;
  double n1 = 0, n2 = 0, dot = 0;
  uint64_t both = 0, disagree = 0, large = 0;
  for (size_t i = 0; i < base.size(); ++i) {
    const double d1 = double(e1[i]) - base[i], d2 = double(e2[i]) - base[i];
    n1 += d1 * d1, n2 += d2 * d2, dot += d1 * d2;
    if (d1 != 0 && d2 != 0) ++both, disagree += (d1 > 0) != (d2 > 0);
    if (std::abs(d1) > 0.0025) ++large;
  }
  const double expected_rms = std::sqrt(s.shared_lowrank * s.shared_lowrank +
                                        s.private_lowrank * s.private_lowrank + s.noise * s.noise);
  const double rms1 = std::sqrt(n1 / base.size());
  EXPECT_GT(rms1, 0.7 * expected_rms);
  EXPECT_LT(rms1, 1.6 * expected_rms);
  const double cosine = dot / std::sqrt(n1 * n2);
  EXPECT_GT(cosine, 0.05);  // the shared part correlates them
  EXPECT_LT(cosine, 0.7);   // the private parts keep them apart
  const double conflict = double(disagree) / both;
  EXPECT_GT(conflict, 0.2);
  EXPECT_LT(conflict, 0.5);
  EXPECT_GT(large, 0u);     // sparse large changes exist
  EXPECT_LT(large, base.size() / 50);
}

TEST(SynthValues, NormalGeneratorMoments) {
  const uint64_t key = stream_key(hash_name("x"), 1);
  double sum = 0, sq = 0, quart = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double z = normal_from_bits(counter_bits(key, i));
    sum += z, sq += z * z, quart += z * z * z * z;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(sq / n, 1.0, 0.02);
  EXPECT_NEAR(quart / n, 3.0, 0.1);
}

}  // namespace
}  // namespace amalgam::synth
