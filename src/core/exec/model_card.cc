#include "exec/model_card.h"

#include <set>

#include <fmt/format.h>

namespace amalgam {
namespace {
// Quotes a string for YAML front matter (refs may hold ':' or '#').
std::string yaml_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}
}  // namespace

std::string model_card(const MergePlan& plan, const ModelSet& models, const Recipe& recipe,
                       const std::string& out_name) {
  std::set<std::string> methods;
  for (const auto& t : plan.tensors)
    if (t.method) methods.insert(std::string(t.method->name()));
  if (methods.empty()) methods.insert(recipe.merge_method);

  std::string card = "---\n";
  if (recipe.base_model) card += fmt::format("base_model: {}\n", yaml_quote(*recipe.base_model));
  card += "library_name: transformers\ntags:\n- amalgam\n- mergekit\n- merge\n---\n";
  card += fmt::format("# {}\n\n", out_name);
  card += "This is a merge of pre-trained language models created with amalgam, "
          "from a mergekit-compatible recipe.\n\n## Merge Details\n\n### Merge Method\n\n";
  std::string list;
  for (const auto& m : methods) list += (list.empty() ? "" : ", ") + fmt::format("`{}`", m);
  card += fmt::format("This model was merged using the {} merge method", list);
  if (recipe.base_model) card += fmt::format(" with `{}` as the base", *recipe.base_model);
  card += ".\n\n### Models Merged\n\nThe following models were included in the merge:\n";
  for (size_t i = 0; i < models.size(); ++i) {
    const std::string& ref = models.at(i).ref();
    if (recipe.base_model && ref == *recipe.base_model) continue;
    card += fmt::format("* `{}`\n", ref);
  }
  card += fmt::format("\n{} tensors, {} bytes of weights.\n", plan.tensors.size(),
                      plan.output_bytes());
  card += "\n### Configuration\n\nThe following YAML configuration was used to produce this "
          "model:\n\n```yaml\n";
  card += recipe.text;
  if (!recipe.text.empty() && recipe.text.back() != '\n') card += '\n';
  card += "```\n";
  return card;
}

}  // namespace amalgam
