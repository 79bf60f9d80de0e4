// linear (Model Soups, METHODS.md §5.1): R = sum_i w_i X_i (/ sum_i w_i when normalize).
// Every input takes part, the base too. A zero weight sum under normalize is an error
// (§8.2) instead of mergekit's inf/NaN. Inputs with weight exactly 0 are skipped, which
// also makes weights [1, 0] return model 1 bit-for-bit. bf16 checkpoints merged to bf16
// take merge_bf16, which reads the stored bits tile by tile (the same sums, rounded once).
#include <cmath>

#include "kernels/convert.h"
#include "kernels/simd.h"
#include "methods/method_util.h"

namespace amalgam {
namespace {
using namespace mdetail;

// out = sum_k coef_k x_k over one tile, in merge()'s order: the first input, then two at
// a time (half the passes over `out`), then the last. X is float or bf16 bits.
template <class X>
inline __attribute__((always_inline)) void weighted_sum(const X* const* xs, const float* coef, size_t M, size_t n,
                                                       float* __restrict out) {
  {
    const X* __restrict x = xs[0];
    const float w = coef[0];
    if (w == 1.0f)
      for (size_t i = 0; i < n; ++i) out[i] = load_bf16(x[i]);
    else
      for (size_t i = 0; i < n; ++i) out[i] = w * load_bf16(x[i]);
  }
  size_t k = 1;
  for (; k + 1 < M; k += 2) {
    const X* __restrict x = xs[k];
    const X* __restrict y = xs[k + 1];
    const float w = coef[k], v = coef[k + 1];
    for (size_t i = 0; i < n; ++i) out[i] = (out[i] + w * load_bf16(x[i])) + v * load_bf16(y[i]);
  }
  for (; k < M; ++k) {
    const X* __restrict x = xs[k];
    const float w = coef[k];
    for (size_t i = 0; i < n; ++i) out[i] += w * load_bf16(x[i]);
  }
}

AMALGAM_SIMD_CLONES void weighted_sum_f32(const float* const* xs, const float* coef, size_t M, size_t n, float* out) {
  weighted_sum(xs, coef, M, n, out);
}
AMALGAM_SIMD_CLONES void weighted_sum_bf16(const uint16_t* const* xs, const float* coef, size_t M, size_t n,
                                           float* out) {
  weighted_sum(xs, coef, M, n, out);
}

class LinearMerger final : public TensorMerger {
 public:
  LinearMerger(std::vector<size_t> inputs, std::vector<float> coef)
      : inputs_(std::move(inputs)), coef_(std::move(coef)) {}
  void merge(const Chunk& c, float* out) const override {
    if (inputs_.empty()) {
      std::fill(out, out + c.count, 0.0f);
      return;
    }
    std::vector<const float*> xs(inputs_.size());
    for (size_t k = 0; k < xs.size(); ++k) xs[k] = c.inputs[inputs_[k]];
    weighted_sum_f32(xs.data(), coef_.data(), xs.size(), c.count, out);
  }

  bool has_bf16_merge() const override { return true; }
  bool merge_bf16(const Bf16Chunk& c, uint16_t* out) const override {
    if (inputs_.empty()) {
      std::fill(out, out + c.count, uint16_t{0});
      return true;
    }
    // Tile by tile: the f32 sums stay in L1 until rounded.
    std::vector<const uint16_t*> xs(inputs_.size());
    float acc[kTile];
    bool finite = true;
    for_each_tile(0, c.count, [&](uint64_t off, uint64_t n) {
      for (size_t k = 0; k < xs.size(); ++k) xs[k] = c.inputs[inputs_[k]] + off;
      weighted_sum_bf16(xs.data(), coef_.data(), xs.size(), n, acc);
      finite &= f32_to_bf16_finite(acc, out + off, n);
    });
    return finite;
  }

 private:
  std::vector<size_t> inputs_;
  std::vector<float> coef_;
};

std::unique_ptr<TensorMerger> create(const TensorJob& job, std::string_view name) {
  if (job.n_inputs() == 0) job_error(job, name, "needs at least one input");
  std::vector<double> w(job.n_inputs());
  double sum = 0;
  for (size_t i = 0; i < job.n_inputs(); ++i) {
    w[i] = required_model_param(job, name, i, "weight");
    sum += w[i];
  }
  const bool normalize = truthy(job.param_or("normalize", 1.0));
  if (normalize && sum == 0.0)
    job_error(job, name, "weights sum to 0 under normalize (mergekit would write inf/NaN)");
  std::vector<size_t> idx;
  std::vector<float> coef;
  for (size_t i = 0; i < w.size(); ++i) {
    if (w[i] == 0.0) continue;
    idx.push_back(i);
    coef.push_back(static_cast<float>(normalize ? w[i] / sum : w[i]));
  }
  return std::make_unique<LinearMerger>(std::move(idx), std::move(coef));
}
}  // namespace

const MergeMethod& method_linear() {
  static const SimpleMethod m("linear",
                              {model_param("weight", std::nullopt, true), global_param("normalize", 1.0)},
                              BaseRole::CountedAsInput, &create);
  return m;
}

}  // namespace amalgam
