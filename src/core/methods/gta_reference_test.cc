// The streaming GTA sparsifiers against a dumb whole-tensor reference written from
// METHODS.md §5.2 (full sorts, no streaming), on data with many magnitude ties
// (bf16-rounded inputs) and tensors spanning several reduction blocks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "kernels/philox.h"
#include "methods/test_util.h"

namespace amalgam {
namespace {
using namespace testing_util;
using Params = std::map<std::string, double>;

// Positions of the m largest |d| (ties: lower index first).
std::vector<uint8_t> top_m(const std::vector<float>& d, size_t m) {
  std::vector<size_t> idx(d.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return std::fabs(d[a]) > std::fabs(d[b]); });
  std::vector<uint8_t> sel(d.size());
  for (size_t i = 0; i < m; ++i) sel[idx[i]] = 1;
  return sel;
}

// Reference: weighted deltas after sparsification, then (optional) TIES consensus.
std::vector<float> reference(const std::vector<std::vector<float>>& in, const std::vector<float>& w,
                             const std::vector<std::vector<uint8_t>>& masks, bool consensus, bool normalize) {
  const size_t n = in[0].size(), M = in.size() - 1;
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) {
    std::vector<float> e(M);
    float S = 0;
    for (size_t k = 0; k < M; ++k) {
      e[k] = w[k] * ((in[k + 1][i] - in[0][i]) * (masks[k][i] ? 1.0f : 0.0f) * 1.0f);
      S += e[k];
    }
    float D = 0, Z = 0;
    for (size_t k = 0; k < M; ++k) {
      bool agree = !consensus || (S >= 0 ? e[k] > 0 : e[k] < 0);
      if (agree) {
        D += e[k];
        Z += w[k];
      }
    }
    if (!consensus) {
      Z = 0;
      for (float x : w) Z += x;
    }
    if (normalize) D /= (Z == 0 ? 1.0f : Z);
    out[i] = in[0][i] + D;
  }
  return out;
}

std::vector<float> delta(const std::vector<std::vector<float>>& in, size_t k) {
  std::vector<float> d(in[0].size());
  for (size_t i = 0; i < d.size(); ++i) d[i] = in[k][i] - in[0][i];
  return d;
}

TEST(GtaReference, TiesMatchesWholeTensorReference) {
  const size_t n = 300000;
  for (bool bf16 : {false, true}) {
    auto in = random_models(4, n, 21, 0.01f, bf16);
    std::vector<float> w = {1.0f, 0.5f, 0.75f};
    std::vector<double> rho = {0.2, 0.5, 0.9};
    std::vector<Params> mp = {{}};
    std::vector<std::vector<uint8_t>> masks;
    for (size_t k = 0; k < 3; ++k) {
      mp.push_back({{"weight", w[k]}, {"density", rho[k]}});
      masks.push_back(top_m(delta(in, k + 1), static_cast<size_t>(std::floor(rho[k] * n))));
    }
    auto job = make_job({static_cast<int64_t>(n)}, 4, 0, mp);
    auto want = reference(in, w, masks, true, true);
    for (int threads : {1, 2}) {
      auto got = merge_in_memory(*find_method("ties"), job, in, 65536, threads);
      EXPECT_TRUE(same_bits(got, want)) << "bf16 " << bf16;
    }
  }
}

TEST(GtaReference, BreadcrumbsMatchesWholeTensorReference) {
  const size_t n = 200000;
  for (bool bf16 : {false, true}) {
    auto in = random_models(3, n, 22, 0.01f, bf16);
    std::vector<float> w = {0.6f, 0.4f};
    std::vector<Params> mp = {{}};
    std::vector<std::vector<uint8_t>> masks;
    for (size_t k = 0; k < 2; ++k) {
      const double rho = 0.4, gamma = 0.05;
      mp.push_back({{"weight", w[k]}, {"density", rho}, {"gamma", gamma}});
      auto d = delta(in, k + 1);
      // Keep descending ranks [n_top, n_top + keep).
      size_t keep = static_cast<size_t>(std::floor(rho * n)), n_top = static_cast<size_t>(std::floor(gamma * n));
      auto hi = top_m(d, n_top + keep), lo = top_m(d, n_top);
      std::vector<uint8_t> m(n);
      for (size_t i = 0; i < n; ++i) m[i] = hi[i] && !lo[i];
      masks.push_back(m);
    }
    auto job = make_job({static_cast<int64_t>(n)}, 3, 0, mp);
    EXPECT_TRUE(same_bits(merge_in_memory(*find_method("breadcrumbs"), job, in, 1, 2),
                          reference(in, w, masks, false, false)));
    EXPECT_TRUE(same_bits(merge_in_memory(*find_method("breadcrumbs_ties"), job, in, 1, 2),
                          reference(in, w, masks, true, false)));
  }
}

// Records the keep probabilities DELLA asks for.
class ProbeMasks : public MaskSource {
 public:
  explicit ProbeMasks(size_t n) : p(n, -1.0) {}
  bool keep(size_t model, uint64_t index, double prob) const override {
    if (model == 0) p[index] = prob;
    return true;
  }
  mutable std::vector<double> p;
};

TEST(GtaReference, DellaProbabilitiesFollowRowRanks) {
  const int64_t rows = 70, cols = 1500;  // several reduction blocks of whole rows
  auto in = random_models(2, rows * cols, 23, 0.01f, true);  // bf16: many equal magnitudes
  ProbeMasks probe(rows * cols);
  auto job = make_job({rows, cols}, 2, 0, {{}, {{"weight", 1.0}, {"density", 0.5}, {"epsilon", 0.2}}});
  job.masks = &probe;
  merge_in_memory(*find_method("della"), job, in, 1, 2);
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<size_t> idx(cols);
    std::iota(idx.begin(), idx.end(), 0);
    auto mag = [&](size_t c) { return std::fabs(in[1][r * cols + c] - in[0][r * cols + c]); };
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return mag(a) < mag(b); });
    for (int64_t q = 0; q < cols; ++q) {
      const float want = static_cast<float>(0.3 + 0.4 * (static_cast<double>(q) / (cols - 1)));
      ASSERT_EQ(static_cast<float>(probe.p[r * cols + idx[q]]), want) << "row " << r << " rank " << q;
    }
  }
}

TEST(GtaReference, DellaRanksAlongAxisOneOf3dTensors) {
  const int64_t A = 3, R = 50, K = 40;  // fibres along axis 1: (a, :, k), strided by K
  auto in = random_models(2, A * R * K, 24, 0.01f, true);
  ProbeMasks probe(A * R * K);
  auto job = make_job({A, R, K}, 2, 0, {{}, {{"weight", 1.0}, {"density", 0.5}, {"epsilon", 0.2}}});
  job.masks = &probe;
  merge_in_memory(*find_method("della_linear"), job, in, 1, 2);
  for (int64_t a = 0; a < A; ++a)
    for (int64_t k = 0; k < K; ++k) {
      auto at = [&](int64_t r) { return (a * R + r) * K + k; };
      std::vector<int64_t> idx(R);
      std::iota(idx.begin(), idx.end(), 0);
      auto mag = [&](int64_t r) { return std::fabs(in[1][at(r)] - in[0][at(r)]); };
      std::stable_sort(idx.begin(), idx.end(), [&](int64_t x, int64_t y) { return mag(x) < mag(y); });
      for (int64_t q = 0; q < R; ++q) {
        const float want = static_cast<float>(0.3 + 0.4 * (static_cast<double>(q) / (R - 1)));
        ASSERT_EQ(static_cast<float>(probe.p[at(idx[q])]), want) << a << "," << k << " rank " << q;
      }
    }
}

TEST(GtaReference, DellaRowOfLengthOneKeepsWithProbabilityRho) {
  auto in = random_models(2, 64, 25);
  ProbeMasks probe(64);
  auto job = make_job({64, 1}, 2, 0, {{}, {{"weight", 1.0}, {"density", 0.4}, {"epsilon", 0.1}}});
  job.masks = &probe;
  merge_in_memory(*find_method("della"), job, in);
  for (double p : probe.p) EXPECT_FLOAT_EQ(static_cast<float>(p), 0.4f);
}

// A fixed keep pattern, whatever the probability.
class PatternMasks : public MaskSource {
 public:
  bool keep(size_t model, uint64_t index, double) const override {
    return ((index * 2654435761u + model * 97u) >> 9) % 3 != 0;
  }
};

// DELLA keeps its masks as bits between the rescale pass and the merge (whole 64-bit
// words per row where rows are multiples of 64, also rows longer than a tile): the merge
// equals weighted, masked, L1-rescaled deltas under the TIES consensus, for rows of 896,
// 1088 (past one 1024-element tile) and 100 (words shared between rows), in chunks of one
// row and of the whole tensor. Masks injected, and drawn by Philox: then the reference
// draws them itself (u < p of the element's rank in its row, METHODS.md §5.2.1, §8.6),
// which checks the bit kernels of the rescale pass (rows of multiples of 64) and the
// float-mask path (rows of 100) against the same independent draw.
TEST(GtaReference, DellaStoredMaskBitsApplyToTheirElements) {
  for (bool drawn : {false, true})
    for (int64_t cols : {int64_t{896}, int64_t{1088}, int64_t{100}}) {
      const int64_t rows = 40;
      const size_t n = static_cast<size_t>(rows * cols), M = 2;
      auto in = random_models(M + 1, n, 26, 0.01f, true);
      const std::vector<float> w = {0.6f, 0.9f};
      const double rho = 0.5, eps = 0.15;
      auto job = make_job({rows, cols}, M + 1, 0,
                          {{}, {{"weight", w[0]}, {"density", rho}}, {{"weight", w[1]}, {"density", rho}}});
      PatternMasks pattern;
      if (!drawn) job.masks = &pattern;
      std::vector<std::vector<uint8_t>> masks(M, std::vector<uint8_t>(n));
      std::vector<float> scale(M);
      const size_t C = static_cast<size_t>(cols);
      for (size_t k = 0; k < M; ++k) {
        if (drawn) {
          const uint64_t key = philox_tensor_key(job.seed, job.name);
          for (size_t r = 0; r < static_cast<size_t>(rows); ++r) {
            std::vector<size_t> order(C);
            std::iota(order.begin(), order.end(), r * C);
            std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
              return std::fabs(in[k + 1][a] - in[0][a]) < std::fabs(in[k + 1][b] - in[0][b]);
            });
            for (size_t q = 0; q < C; ++q) {
              const float p = static_cast<float>(rho - eps + 2 * eps * (static_cast<double>(q) / (C - 1)));
              masks[k][order[q]] = philox_keep(key, static_cast<uint32_t>(k), order[q], p);
            }
          }
        }
        double all = 0, kept = 0;
        for (size_t i = 0; i < n; ++i) {
          if (!drawn) masks[k][i] = pattern.keep(k, i, 0.5);
          const double d = std::fabs(static_cast<double>(in[k + 1][i] - in[0][i]));
          all += d;
          kept += masks[k][i] ? d : 0.0;
        }
        scale[k] = static_cast<float>(all / kept);
      }
      std::vector<float> want(n);
      for (size_t i = 0; i < n; ++i) {
        float e[M], S = 0, D = 0, Z = 0;
        for (size_t k = 0; k < M; ++k) {
          e[k] = w[k] * ((in[k + 1][i] - in[0][i]) * (masks[k][i] ? 1.0f : 0.0f) * scale[k]);
          S += e[k];
        }
        for (size_t k = 0; k < M; ++k)
          if (S >= 0 ? e[k] > 0 : e[k] < 0) D += e[k], Z += w[k];
        want[i] = in[0][i] + D / (Z == 0 ? 1.0f : Z);
      }
      for (uint64_t chunk : {static_cast<uint64_t>(cols), uint64_t{1} << 20}) {
        const std::vector<float> got = merge_in_memory(*find_method("della"), job, in, chunk, 2);
        ASSERT_EQ(got.size(), n);
        for (size_t i = 0; i < n; ++i)  // the scales' f64 sums add in another order: 1e-6
          ASSERT_NEAR(got[i], want[i], 1e-6f * (1.0f + std::fabs(want[i])))
              << (drawn ? "drawn " : "injected ") << cols << " " << chunk << " " << i;
      }
    }
}

}  // namespace
}  // namespace amalgam
