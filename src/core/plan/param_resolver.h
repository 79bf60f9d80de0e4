// Resolves a method's parameters for one tensor job by mergekit's precedence (METHODS.md
// §1.5): the model's source entry, then the slice, then the top level, then the method
// default; required values and ParamSpec ranges are checked here so that the error can
// name the recipe line that set (or failed to set) the value.
#pragma once
#include <string>
#include <vector>

#include "methods/method.h"
#include "recipe/recipe.h"

namespace amalgam {

// One input of a job as the resolver sees it.
struct InputParams {
  const ParamMap* entry = nullptr;  // the model's own `parameters` (nullptr: auto-added base)
  std::string tensor;               // that model's input tensor name (filters match it)
  std::string ref;                  // model reference, for messages
  int line = 0;                     // recipe line naming the model
  bool base_exempt = false;         // the job's base: a missing required value stays unset
};

// Fills job.model_params (one map per input) and job.params. `slice_params` is nullptr in
// the models: form; `method_line` is where the method was chosen (for global errors).
void resolve_job_params(const Recipe& recipe, const MergeMethod& method,
                        const ParamMap* slice_params, int method_line,
                        const std::vector<InputParams>& inputs, double t, TensorJob& job);

// One warning per recipe parameter that no method in `methods` declares (mergekit ignores
// them silently, which hides typos), and per global parameter put under a model entry.
std::vector<std::string> unused_parameter_warnings(const Recipe& recipe,
                                                   const std::vector<const MergeMethod*>& methods);

}  // namespace amalgam
