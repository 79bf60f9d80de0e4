// model_stock (METHODS.md §5.7, arXiv 2403.19522): t = N c / (1 + (N - 1) c) from the mean
// pairwise cosine c of the offsets w_i - w0; R = w0 + (t / N) sum_i (w_i - w0), which is
// t * mean + (1 - t) * w0. One angle per tensor, or per row (last axis) with filter_wise.
#include <cmath>

#include "methods/gram.h"
#include "methods/method_util.h"

namespace amalgam {
namespace {
using namespace mdetail;

class ModelStockMerger final : public GramMerger {
 public:
  ModelStockMerger(const TensorJob& job, std::vector<size_t> xs, int base, BlockGram::Segments seg,
                   uint64_t len)
      : GramMerger(job, "model_stock", std::move(xs), base, seg, len) {}

 private:
  void solve() override {
    const size_t N = gram().size();
    for (uint64_t s = 0; s < gram().segments(); ++s) {
      double sum = 0;
      for (size_t i = 0; i < N; ++i)
        for (size_t j = i + 1; j < N; ++j) {
          double den = std::max(std::sqrt(gram().at(s, i, i)) * std::sqrt(gram().at(s, j, j)), 1e-6);
          sum += std::clamp(gram().at(s, i, j) / den, -1.0, 1.0);
        }
      const double c = sum / (N * (N - 1) / 2.0);
      const double den = 1.0 + (N - 1.0) * c;
      if (den == 0.0)
        job_error(job_, "model_stock", fmt::format("mean cosine c = -1/(N-1) = {} makes t infinite", c));
      const double t = N * c / den;
      for (size_t k = 0; k < N; ++k) coef_[s * N + k] = t / N;
    }
  }
};

std::unique_ptr<TensorMerger> create(const TensorJob& job, std::string_view name) {
  require_base(job, name);
  auto xs = non_base_inputs(job);
  if (xs.empty()) return make_copy_merger(static_cast<size_t>(job.base));
  if (xs.size() < 2) job_error(job, name, fmt::format("needs at least 2 models besides the base, got {}", xs.size()));
  const bool filter_wise = truthy(job.param_or("filter_wise", 0.0));
  auto seg = filter_wise ? BlockGram::Segments::Rows : BlockGram::Segments::Whole;
  uint64_t len = filter_wise && !job.shape.empty() ? static_cast<uint64_t>(job.shape.back()) : job.numel();
  return std::make_unique<ModelStockMerger>(job, xs, job.base, seg, len);
}
}  // namespace

const MergeMethod& method_model_stock() {
  static const SimpleMethod m("model_stock", {global_param("filter_wise", 0.0)}, BaseRole::Required, &create);
  return m;
}

}  // namespace amalgam
