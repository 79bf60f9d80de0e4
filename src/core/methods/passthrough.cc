// passthrough (METHODS.md §5.11): exactly one input, optionally multiplied by its `scale`.
#include "methods/method_util.h"

namespace amalgam {
namespace {
using namespace mdetail;

std::unique_ptr<TensorMerger> create(const TensorJob& job, std::string_view name) {
  if (job.n_inputs() != 1)
    job_error(job, name, fmt::format("expects exactly one tensor, got {}", job.n_inputs()));
  auto scale = job.model_param(0, "scale");
  return make_copy_merger(0, scale ? static_cast<float>(*scale) : 1.0f);
}
}  // namespace

const MergeMethod& method_passthrough() {
  static const SimpleMethod m("passthrough", {model_param("scale", std::nullopt)}, BaseRole::Ignored,
                              &create);
  return m;
}

}  // namespace amalgam
