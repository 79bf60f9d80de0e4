#include "plan/shape_rules.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "util/error.h"

namespace amalgam {

bool is_gta_method(const std::string& m) {
  static const std::set<std::string> gta = {"task_arithmetic", "ties",        "dare_ties",
                                            "dare_linear",     "breadcrumbs", "breadcrumbs_ties",
                                            "della",           "della_linear"};
  return gta.count(m) > 0;
}

std::string shape_str(const std::vector<int64_t>& s) {
  return fmt::format("[{}]", fmt::join(s, ", "));
}

ShapeDecision reconcile_shapes(const std::string& tensor, const std::string& method,
                               const std::vector<ShapeInput>& inputs, int base, bool embedding,
                               std::optional<int64_t> vocab_rows) {
  ShapeDecision d;
  d.keep.assign(inputs.size(), true);
  const auto& first = *inputs[0].shape;
  bool all_equal = true, all_2d = true;
  for (const auto& in : inputs) {
    all_equal &= *in.shape == first;
    all_2d &= in.shape->size() == 2;
  }
  if (!(embedding && all_2d)) vocab_rows.reset();
  if (all_equal && (!vocab_rows || *vocab_rows == first[0])) {
    d.shape = first;
    return d;
  }
  bool gta = is_gta_method(method) && base >= 0;
  if (embedding && all_2d) {
    std::vector<int64_t> target = first;
    for (const auto& in : inputs) {
      target[0] = std::min(target[0], (*in.shape)[0]);
      target[1] = std::min(target[1], (*in.shape)[1]);
    }
    const char* why = "common top-left sub-matrix";
    if (vocab_rows) {
      target[0] = *vocab_rows;
      why = "tokenizer source's vocabulary";
    } else if (gta) {
      target = *inputs[base].shape;
      why = "base model's shape (task-arithmetic rule)";
    }
    std::vector<std::string> parts;
    for (const auto& in : inputs) {
      const auto& s = *in.shape;
      if (s[0] < target[0] || s[1] < target[1]) {
        fail(ErrorKind::Input,
             "tensor '{}': model '{}' has shape {} but the merge needs {} ({}); amalgam cannot "
             "extend embeddings (tokenizer re-mapping is not supported yet)",
             tensor, in.label, shape_str(s), shape_str(target), why);
      }
      if (s != target) parts.push_back(fmt::format("{} in '{}'", shape_str(s), in.label));
    }
    if (!parts.empty()) {
      d.rectified = fmt::format("tensor '{}': shapes differ ({}); merged on the {} {}", tensor,
                                fmt::join(parts, ", "), why, shape_str(target));
    }
    d.shape = target;
    return d;
  }
  if (gta) {
    // mergekit leaves out a non-base model whose tensor differs from the base's.
    d.shape = *inputs[base].shape;
    for (size_t i = 0; i < inputs.size(); ++i) d.keep[i] = *inputs[i].shape == d.shape;
    return d;
  }
  std::vector<std::string> parts;
  for (const auto& in : inputs)
    parts.push_back(fmt::format("{} in '{}'", shape_str(*in.shape), in.label));
  fail(ErrorKind::Input, "tensor '{}': shape mismatch: {} (method {})", tensor,
       fmt::join(parts, ", "), method);
}

}  // namespace amalgam
