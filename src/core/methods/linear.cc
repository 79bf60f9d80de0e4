// linear (Model Soups, METHODS.md §5.1): R = sum_i w_i X_i (/ sum_i w_i when normalize).
// Every input takes part, the base too. A zero weight sum under normalize is an error
// (§8.2) instead of mergekit's inf/NaN. Inputs with weight exactly 0 are skipped, which
// also makes weights [1, 0] return model 1 bit-for-bit.
#include <cmath>

#include "methods/method_util.h"

namespace amalgam {
namespace {
using namespace mdetail;

class LinearMerger final : public TensorMerger {
 public:
  LinearMerger(std::vector<size_t> inputs, std::vector<float> coef)
      : inputs_(std::move(inputs)), coef_(std::move(coef)) {}
  void merge(const Chunk& c, float* out) const override {
    const uint64_t n = c.count;
    if (inputs_.empty()) {
      std::fill(out, out + n, 0.0f);
      return;
    }
    {
      const float* x = c.inputs[inputs_[0]];
      const float w = coef_[0];
      if (w == 1.0f)
        std::copy(x, x + n, out);
      else
        for (uint64_t i = 0; i < n; ++i) out[i] = w * x[i];
    }
    // Two inputs at a time: half the passes over `out`.
    size_t k = 1;
    for (; k + 1 < inputs_.size(); k += 2) {
      const float* x = c.inputs[inputs_[k]];
      const float* y = c.inputs[inputs_[k + 1]];
      const float w = coef_[k], v = coef_[k + 1];
      for (uint64_t i = 0; i < n; ++i) out[i] = (out[i] + w * x[i]) + v * y[i];
    }
    for (; k < inputs_.size(); ++k) {
      const float* x = c.inputs[inputs_[k]];
      const float w = coef_[k];
      for (uint64_t i = 0; i < n; ++i) out[i] += w * x[i];
    }
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
