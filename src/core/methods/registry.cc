// The method registry: one line per method (names as mergekit registers them). Each
// method file defines its accessor; listing them here keeps the static library from
// dropping plugins that nothing else references.
#include <string>
#include <vector>

#include "methods/method.h"

namespace amalgam {

// Defined in the method files of this folder.
const MergeMethod& method_linear();
const MergeMethod& method_task_arithmetic();
const MergeMethod& method_ties();
const MergeMethod& method_dare_ties();
const MergeMethod& method_dare_linear();
const MergeMethod& method_breadcrumbs();
const MergeMethod& method_breadcrumbs_ties();
const MergeMethod& method_della();
const MergeMethod& method_della_linear();
const MergeMethod& method_model_stock();
const MergeMethod& method_slerp();
const MergeMethod& method_nuslerp();
const MergeMethod& method_multislerp();
const MergeMethod& method_karcher();
const MergeMethod& method_sce();
const MergeMethod& method_nearswap();
const MergeMethod& method_arcee_fusion();
const MergeMethod& method_passthrough();
const MergeMethod& method_ram();
const MergeMethod& method_ramplus_tl();

namespace {
const std::vector<const MergeMethod*>& all_methods() {
  static const std::vector<const MergeMethod*> methods = {
      &method_linear(),      &method_task_arithmetic(), &method_ties(),
      &method_dare_ties(),   &method_dare_linear(),     &method_breadcrumbs(),
      &method_breadcrumbs_ties(), &method_della(),      &method_della_linear(),
      &method_model_stock(), &method_slerp(),           &method_nuslerp(),
      &method_multislerp(),  &method_karcher(),         &method_sce(),
      &method_nearswap(),    &method_arcee_fusion(),    &method_passthrough(),
      &method_ram(),         &method_ramplus_tl(),
  };
  return methods;
}
}  // namespace

const MergeMethod* find_method(std::string_view name) {
  for (const MergeMethod* m : all_methods())
    if (m->name() == name) return m;
  return nullptr;
}

std::vector<std::string> method_names() {
  std::vector<std::string> names;
  for (const MergeMethod* m : all_methods()) names.emplace_back(m->name());
  return names;
}

}  // namespace amalgam
