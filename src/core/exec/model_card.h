// The README.md model card written beside a merged model: Hugging Face front matter
// (base_model, tags), the methods and models that went in, and the recipe verbatim in a
// yaml block so the merge can be reproduced.
#pragma once
#include <string>

#include "plan/plan.h"
#include "recipe/recipe.h"

namespace amalgam {

std::string model_card(const MergePlan& plan, const ModelSet& models, const Recipe& recipe,
                       const std::string& out_name);

}  // namespace amalgam
