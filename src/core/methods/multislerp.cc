// multislerp (METHODS.md §5.5): one-step tangent-space barycentre on the hypersphere.
// Every vector involved (u_i, m, tau_i, T, r) is a combination of the x_i = X_i (- B), so
// the n x n Gram matrix of the x_i gives all norms and the final coefficients.
#include <cmath>

#include "methods/gram.h"
#include "methods/method_util.h"

namespace amalgam {
namespace {
using namespace mdetail;
using Vec = std::vector<double>;

class MultislerpMerger final : public GramMerger {
 public:
  MultislerpMerger(const TensorJob& job, std::vector<size_t> xs, int base, Vec w, double eps)
      : GramMerger(job, "multislerp", std::move(xs), base, BlockGram::Segments::Whole, 1), w_(std::move(w)), eps_(eps) {}

 private:
  double dot(const Vec& a, const Vec& b) const {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i)
      for (size_t j = 0; j < b.size(); ++j) s += a[i] * b[j] * gram().at(0, i, j);
    return s;
  }
  void solve() override {
    const size_t K = w_.size();
    Vec n(K), m(K, 0.0);
    for (size_t i = 0; i < K; ++i) {
      n[i] = std::sqrt(gram().at(0, i, i));
      m[i] = w_[i] / (n[i] + eps_);  // m = sum_i w_i u_i, u_i = x_i / (n_i + eps)
    }
    const double mnorm = std::sqrt(std::max(dot(m, m), 0.0));
    if (mnorm < eps_) {
      if (K != 2) job_error(job_, "multislerp", "the weighted sum of the normalized inputs is zero");
      coef_ = w_;
      return;
    }
    Vec mhat(K);
    for (size_t i = 0; i < K; ++i) mhat[i] = m[i] / mnorm;
    // T = sum_i w_i (u_i - (u_i . mhat) mhat) = m - (sum_i w_i (u_i . mhat)) mhat.
    double proj = 0;
    for (size_t i = 0; i < K; ++i) {
      Vec ui(K, 0.0);
      ui[i] = 1.0 / (n[i] + eps_);
      proj += w_[i] * dot(ui, mhat);
    }
    Vec T(K);
    for (size_t i = 0; i < K; ++i) T[i] = m[i] - proj * mhat[i];
    const double L = std::sqrt(std::max(dot(T, T), 0.0)) + eps_;
    double scale = 0;
    for (size_t i = 0; i < K; ++i) scale += w_[i] * n[i];
    for (size_t i = 0; i < K; ++i) coef_[i] = (mhat[i] * std::cos(L) + T[i] * (std::sin(L) / L)) * scale;
  }
  Vec w_;
  double eps_;
};

std::unique_ptr<TensorMerger> create(const TensorJob& job, std::string_view name) {
  auto xs = non_base_inputs(job);
  if (xs.empty()) {
    if (job.base >= 0) return make_copy_merger(static_cast<size_t>(job.base));
    job_error(job, name, "needs at least one model");
  }
  if (xs.size() == 1) return make_copy_merger(xs[0]);
  Vec w;
  double sum = 0;
  for (size_t i : xs) {
    w.push_back(required_model_param(job, name, i, "weight"));
    sum += w.back();
  }
  if (truthy(job.param_or("normalize_weights", 1.0))) {
    if (sum == 0.0) job_error(job, name, "weights sum to 0 under normalize_weights (mergekit would write inf/NaN)");
    for (double& x : w) x /= sum;
  }
  return std::make_unique<MultislerpMerger>(job, xs, job.base, w, job.param_or("eps", 1e-8));
}
}  // namespace

const MergeMethod& method_multislerp() {
  static const SimpleMethod m("multislerp",
                              {model_param("weight", std::nullopt, true), global_param("normalize_weights", 1.0),
                               global_param("eps", 1e-8)},
                              BaseRole::Optional, &create);
  return m;
}

}  // namespace amalgam
