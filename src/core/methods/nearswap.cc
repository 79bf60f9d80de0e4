// nearswap (METHODS.md §5.9): w = clamp(t / max(|B - X|, 1e-6), 0, 1), R = w X + (1 - w) B:
// elements closer than t are taken from X, farther ones move exactly t toward X.
#include <cmath>

#include "methods/method_util.h"

namespace amalgam {
namespace {
using namespace mdetail;

class NearswapMerger final : public TensorMerger {
 public:
  NearswapMerger(size_t base, size_t other, float t) : base_(base), other_(other), t_(t) {}
  void merge(const Chunk& c, float* out) const override {
    const float* b = c.inputs[base_];
    const float* x = c.inputs[other_];
    const float t = t_;
    for (uint64_t i = 0; i < c.count; ++i) {
      float w = t / std::max(std::fabs(b[i] - x[i]), 1e-6f);
      w = std::min(std::max(w, 0.0f), 1.0f);
      out[i] = w * x[i] + (1.0f - w) * b[i];
    }
  }

 private:
  size_t base_, other_;
  float t_;
};

std::unique_ptr<TensorMerger> create(const TensorJob& job, std::string_view name) {
  require_base(job, name);
  auto others = non_base_inputs(job);
  if (others.empty()) return make_copy_merger(static_cast<size_t>(job.base));
  if (others.size() > 1)
    job_error(job, name, fmt::format("expects exactly one model besides the base, got {}", others.size()));
  double t = job.param("t");
  if (t <= 0) return make_copy_merger(static_cast<size_t>(job.base));
  return std::make_unique<NearswapMerger>(static_cast<size_t>(job.base), others[0], static_cast<float>(t));
}
}  // namespace

const MergeMethod& method_nearswap() {
  static const SimpleMethod m("nearswap", {global_param("t", std::nullopt, true)}, BaseRole::Required,
                              &create);
  return m;
}

}  // namespace amalgam
