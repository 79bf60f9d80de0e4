// nuslerp (METHODS.md §5.4): slerp of two models (or of their task vectors when a third,
// base model is given) with t = w2 / (w1 + w2); one angle per tensor, per row (last axis)
// or per column (axis 0). Only lerps when |sin theta| < 1e-8.
#include <cmath>

#include "methods/gram.h"
#include "methods/method_util.h"

namespace amalgam {
namespace {
using namespace mdetail;

class NuslerpMerger final : public GramMerger {
 public:
  NuslerpMerger(const TensorJob& job, std::vector<size_t> xs, int base, BlockGram::Segments seg,
                uint64_t seg_len, double t)
      : GramMerger(job, "nuslerp", std::move(xs), base, seg, seg_len), t_(t) {}

 private:
  void solve() override {
    for (uint64_t s = 0; s < gram().segments(); ++s) {
      const double n0 = std::max(std::sqrt(gram().at(s, 0, 0)), 1e-7);
      const double n1 = std::max(std::sqrt(gram().at(s, 1, 1)), 1e-7);
      const double d = std::clamp(gram().at(s, 0, 1) / (n0 * n1), -1.0, 1.0);
      const double theta = std::acos(d), st = std::sin(theta);
      double* c = coef_.data() + s * 2;
      if (std::fabs(st) < 1e-8) {
        c[0] = 1.0 - t_;
        c[1] = t_;
      } else {
        c[0] = std::sin((1.0 - t_) * theta) / st;
        c[1] = std::sin(t_ * theta) / st;
      }
    }
  }
  double t_;
};

std::unique_ptr<TensorMerger> create(const TensorJob& job, std::string_view name) {
  if (job.n_inputs() == 1) return make_copy_merger(0);
  auto xs = non_base_inputs(job);
  if (job.base >= 0 && job.n_inputs() != 3)
    job_error(job, name, "with a base model exactly three tensors are needed (the base can not be one of the two models)");
  if (xs.size() != 2) job_error(job, name, fmt::format("expects exactly two models, got {}", xs.size()));
  const double w1 = required_model_param(job, name, xs[0], "weight");
  const double w2 = required_model_param(job, name, xs[1], "weight");
  const double t = std::fabs(w1 + w2) < 1e-6 ? 0.5 : w2 / (w1 + w2);
  const bool flatten = truthy(job.param_or("nuslerp_flatten", 1.0));
  const bool row_wise = truthy(job.param_or("nuslerp_row_wise", 0.0));
  const uint64_t n = job.numel();
  auto seg = BlockGram::Segments::Whole;
  uint64_t len = n;
  if (!flatten && job.shape.size() >= 2) {
    if (row_wise) {
      seg = BlockGram::Segments::Columns;
      len = n / static_cast<uint64_t>(job.shape[0]);
    } else {
      seg = BlockGram::Segments::Rows;
      len = static_cast<uint64_t>(job.shape.back());
    }
  }
  return std::make_unique<NuslerpMerger>(job, xs, job.base, seg, len, t);
}
}  // namespace

const MergeMethod& method_nuslerp() {
  static const SimpleMethod m("nuslerp",
                              {model_param("weight", std::nullopt, true), global_param("nuslerp_flatten", 1.0),
                               global_param("nuslerp_row_wise", 0.0)},
                              BaseRole::Optional, &create);
  return m;
}

}  // namespace amalgam
