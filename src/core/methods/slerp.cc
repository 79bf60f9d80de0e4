// slerp (METHODS.md §5.3): spherical interpolation base -> other with one angle for the
// whole tensor; plain lerp when |cos| > 0.9995. Needs only <a,a>, <b,b>, <a,b>.
#include <cmath>

#include "methods/gram.h"
#include "methods/method_util.h"

namespace amalgam {
namespace {
using namespace mdetail;

class SlerpMerger final : public GramMerger {
 public:
  SlerpMerger(const TensorJob& job, size_t base, size_t other, double t)
      : GramMerger(job, "slerp", {base, other}, -1, BlockGram::Segments::Whole, 1), t_(t) {}

 private:
  void solve() override {
    const double na = std::sqrt(gram().at(0, 0, 0)), nb = std::sqrt(gram().at(0, 1, 1));
    // Vectors with norm <= 1e-8 stay unnormalised (mergekit).
    const double sa = na > 1e-8 ? na : 1.0, sb = nb > 1e-8 ? nb : 1.0;
    const double c = gram().at(0, 0, 1) / (sa * sb);
    if (std::fabs(c) > 0.9995) {
      coef_[0] = 1.0 - t_;
      coef_[1] = t_;
      return;
    }
    const double theta = std::acos(c), s = std::sin(theta);
    coef_[0] = std::sin((1.0 - t_) * theta) / s;
    coef_[1] = std::sin(t_ * theta) / s;
  }
  double t_;
};

std::unique_ptr<TensorMerger> create(const TensorJob& job, std::string_view name) {
  if (job.n_inputs() == 1) return make_copy_merger(0);
  require_base(job, name);
  auto others = non_base_inputs(job);
  if (others.size() != 1)
    job_error(job, name, fmt::format("expects exactly two tensors (base + one), got {}", job.n_inputs()));
  return std::make_unique<SlerpMerger>(job, static_cast<size_t>(job.base), others[0], job.param("t"));
}
}  // namespace

const MergeMethod& method_slerp() {
  static const SimpleMethod m("slerp", {global_param("t", std::nullopt, true)}, BaseRole::Required, &create);
  return m;
}

}  // namespace amalgam
