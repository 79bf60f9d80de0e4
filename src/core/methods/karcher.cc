// karcher (METHODS.md §5.6): Riemannian (Karcher) mean of the normalized inputs, scaled
// by their mean norm. The iterate u stays in the span of the inputs, so it is kept as
// coefficients over X_i and every inner product comes from the n x n Gram matrix.
#include <cmath>

#include "methods/gram.h"
#include "methods/method_util.h"

namespace amalgam {
namespace {
using namespace mdetail;
using Vec = std::vector<double>;

class KarcherMerger final : public GramMerger {
 public:
  KarcherMerger(const TensorJob& job, std::vector<size_t> xs, int max_iter, double tol)
      : GramMerger(job, "karcher", std::move(xs), -1, BlockGram::Segments::Whole, 1), max_iter_(max_iter), tol_(tol) {}

 private:
  double dot(const Vec& a, const Vec& b) const {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i)
      if (a[i] != 0)
        for (size_t j = 0; j < b.size(); ++j) s += a[i] * b[j] * gram().at(0, i, j);
    return s;
  }
  void solve() override {
    const size_t K = gram().size();
    Vec n(K);
    std::vector<Vec> u(K, Vec(K, 0.0));
    std::vector<size_t> valid;
    double s = 0;
    for (size_t i = 0; i < K; ++i) {
      n[i] = std::sqrt(gram().at(0, i, i));
      if (n[i] != 0) u[i][i] = 1.0 / n[i];
      if (n[i] > tol_) valid.push_back(i);
      s += n[i] / K;
    }
    if (valid.empty()) return;  // all coefficients 0: zeros
    const double a = 1.0 / valid.size();
    Vec cur(K, 0.0);
    for (size_t i : valid)
      for (size_t k = 0; k < K; ++k) cur[k] += a * u[i][k];
    double norm = std::sqrt(std::max(dot(cur, cur), 0.0));
    if (norm < tol_)
      cur = u[valid[0]];
    else
      for (double& x : cur) x /= norm;
    for (int it = 0; it < max_iter_; ++it) {
      Vec T(K, 0.0);
      for (size_t i : valid) {
        const double d = std::clamp(dot(cur, u[i]), -1.0, 1.0);
        const double theta = std::acos(d);
        if (theta < tol_) continue;
        const double st = std::sin(theta);
        if (st < 1e-7) job_error(job_, "karcher", "antipodal inputs: the Karcher mean is undefined");
        for (size_t k = 0; k < K; ++k) T[k] += a * (theta / st) * (u[i][k] - d * cur[k]);
      }
      const double tn = std::sqrt(std::max(dot(T, T), 0.0));
      if (tn < tol_) break;
      for (size_t k = 0; k < K; ++k) cur[k] = std::cos(tn) * cur[k] + std::sin(tn) * T[k] / tn;
      norm = std::sqrt(std::max(dot(cur, cur), 0.0));
      if (norm > tol_)
        for (double& x : cur) x /= norm;
    }
    for (size_t k = 0; k < K; ++k) coef_[k] = s * cur[k];
  }
  int max_iter_;
  double tol_;
};

std::unique_ptr<TensorMerger> create(const TensorJob& job, std::string_view name) {
  if (job.n_inputs() == 0) job_error(job, name, "needs at least one input");
  if (job.n_inputs() == 1) return make_copy_merger(0);
  std::vector<size_t> all(job.n_inputs());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  return std::make_unique<KarcherMerger>(job, all, static_cast<int>(job.param_or("max_iter", 10)),
                                         job.param_or("tol", 1e-5));
}
}  // namespace

const MergeMethod& method_karcher() {
  static const SimpleMethod m("karcher", {global_param("max_iter", 10.0), global_param("tol", 1e-5)},
                              BaseRole::CountedAsInput, &create);
  return m;
}

}  // namespace amalgam
