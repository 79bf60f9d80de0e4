// Parameter settings: parsing the three YAML value forms (number, gradient, filter list)
// and evaluating them per tensor and layer coordinate t (METHODS.md §1.4).
#include <cmath>
#include <cstdlib>
#include <set>

#include "recipe/recipe_yaml.h"
#include "util/error.h"

namespace amalgam {
namespace recipe_yaml {

int line_of(const YAML::Node& node) {
  YAML::Mark m = node.Mark();
  return m.is_null() ? 0 : m.line + 1;
}

void fail_at(const std::string& path, int line, const std::string& message) {
  throw Error(ErrorKind::Recipe, fmt::format("{}:{}: {}", path, line, message));
}

std::optional<double> scalar_number(const YAML::Node& node) {
  if (!node.IsScalar()) return std::nullopt;
  const std::string& s = node.Scalar();
  bool plain = node.Tag() != "!";  // "!" = quoted scalar: never a boolean
  if (plain) {
    // YAML 1.1 booleans, as PyYAML (mergekit's loader) reads them.
    static const std::set<std::string> yes = {"true", "True", "TRUE", "yes", "Yes",
                                              "YES",  "on",   "On",   "ON"};
    static const std::set<std::string> no = {"false", "False", "FALSE", "no", "No",
                                             "NO",    "off",   "Off",   "OFF"};
    if (yes.count(s)) return 1.0;
    if (no.count(s)) return 0.0;
    // YAML's special floats; rejected later as not finite, with a clear message.
    static const std::set<std::string> inf = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"};
    static const std::set<std::string> ninf = {"-.inf", "-.Inf", "-.INF"};
    static const std::set<std::string> nan = {".nan", ".NaN", ".NAN"};
    if (inf.count(s)) return HUGE_VAL;
    if (ninf.count(s)) return -HUGE_VAL;
    if (nan.count(s)) return std::nan("");
  }
  if (s.empty()) return std::nullopt;
  const char* begin = s.c_str();
  char* end = nullptr;
  double v = std::strtod(begin, &end);
  if (end != begin + s.size()) return std::nullopt;
  return v;
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing (null)";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar:
      return fmt::format("'{}'", node.Scalar());
    default:
      return "an undefined value";
  }
}

namespace {

// A finite number, or an error naming what was found.
double number_at(const std::string& path, const YAML::Node& node, const std::string& what) {
  auto v = scalar_number(node);
  if (!v) {
    fail_at(path, line_of(node),
            fmt::format("{}: expected a number, got {}", what, describe(node)));
  }
  if (!std::isfinite(*v)) {
    fail_at(path, line_of(node), fmt::format("{}: {} is not a finite number", what, node.Scalar()));
  }
  return *v;
}

// A number or a list of numbers (gradient).
std::vector<double> number_or_gradient(const std::string& path, const YAML::Node& node,
                                       const std::string& what, int fallback_line) {
  if (node.IsSequence()) {
    if (node.size() == 0) {
      fail_at(path, line_of(node) ? line_of(node) : fallback_line,
              fmt::format("{}: an empty list is not a value", what));
    }
    std::vector<double> out;
    for (const auto& e : node) {
      if (!e.IsScalar()) {
        fail_at(
            path, line_of(e),
            fmt::format("{}: a gradient must be a list of numbers, found {}", what, describe(e)));
      }
      out.push_back(number_at(path, e, what));
    }
    return out;
  }
  if (node.IsNull() || !node.IsDefined()) {
    // A null node's mark points past the key; the key's line is the one to show.
    fail_at(path, fallback_line, fmt::format("{}: missing value", what));
  }
  if (node.IsMap()) {
    fail_at(path, line_of(node),
            fmt::format("{}: expected a number or a list of numbers, got a mapping", what));
  }
  return {number_at(path, node, what)};
}

FilterEntry parse_filter_entry(const std::string& path, const YAML::Node& node,
                               const std::string& what) {
  FilterEntry entry;
  entry.line = line_of(node);
  bool has_value = false;
  std::set<std::string> seen;
  for (const auto& kv : node) {
    std::string key = kv.first.Scalar();
    int key_line = line_of(kv.first);
    if (!seen.insert(key).second) {
      fail_at(path, key_line, fmt::format("{}: duplicate key '{}'", what, key));
    }
    if (key == "filter") {
      if (kv.second.IsNull()) continue;  // `filter: null` = no filter, as in mergekit
      if (!kv.second.IsScalar()) {
        fail_at(path, key_line,
                fmt::format("{}: filter must be a string, got {}", what, describe(kv.second)));
      }
      entry.filter = kv.second.Scalar();
    } else if (key == "value") {
      entry.value = number_or_gradient(path, kv.second, what + " value", key_line);
      has_value = true;
    } else {
      fail_at(path, key_line,
              fmt::format("{}: unknown key '{}' in a filter entry (expected 'filter' and "
                          "'value')",
                          what, key));
    }
  }
  if (!has_value) {
    fail_at(path, entry.line, fmt::format("{}: filter entry has no 'value'", what));
  }
  return entry;
}

ParamSetting parse_setting(const std::string& path, const std::string& name, const YAML::Node& node,
                           int key_line) {
  ParamSetting s;
  s.line = key_line;
  std::string what = fmt::format("parameter '{}'", name);
  if (node.IsMap()) {
    // METHODS.md §1.4 rule 4: mergekit raises "Unexpected setting value" here too.
    fail_at(path, line_of(node) ? line_of(node) : key_line,
            fmt::format("{}: a {{filter, value}} mapping must be written as a list entry "
                        "('- filter: ...'), as mergekit requires",
                        what));
  }
  if (node.IsSequence() && node.size() > 0 && node[0].IsMap()) {
    for (const auto& e : node) {
      if (!e.IsMap()) {
        fail_at(path, line_of(e),
                fmt::format("{}: a filter list may hold only {{filter, value}} entries, "
                            "found {}",
                            what, describe(e)));
      }
      s.filters.push_back(parse_filter_entry(path, e, what));
    }
    return s;
  }
  if (node.IsScalar() && !scalar_number(node)) {
    fail_at(path, line_of(node),
            fmt::format("{}: expected a number, a list of numbers or a list of {{filter, "
                        "value}} entries, got the string '{}'",
                        what, node.Scalar()));
  }
  s.value = number_or_gradient(path, node, what, key_line);
  return s;
}

}  // namespace

ParamMap parse_param_map(const std::string& path, const YAML::Node& node, int owner_line) {
  ParamMap out;
  if (!node.IsDefined() || node.IsNull()) return out;  // `parameters:` left empty
  if (!node.IsMap()) {
    fail_at(path, line_of(node) ? line_of(node) : owner_line,
            fmt::format("parameters: expected a mapping of name: value, got {}", describe(node)));
  }
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) {
      fail_at(path, line_of(kv.first), "parameters: parameter names must be strings");
    }
    std::string name = kv.first.Scalar();
    int key_line = line_of(kv.first);
    for (const auto& [existing, _] : out) {
      if (existing == name) {
        fail_at(path, key_line, fmt::format("parameter '{}' is given twice", name));
      }
    }
    out.emplace_back(name, parse_setting(path, name, kv.second, key_line));
  }
  return out;
}

}  // namespace recipe_yaml

namespace {
// METHODS.md §1.4 rule 2: piecewise-linear over the list, t in [0, 1].
double interpolate(const std::vector<double>& g, double t) {
  if (g.size() == 1) return g[0];
  double s = t * static_cast<double>(g.size() - 1);
  double lo = std::floor(s);
  if (lo < 0) lo = 0;
  if (lo > static_cast<double>(g.size() - 1)) lo = static_cast<double>(g.size() - 1);
  size_t i0 = static_cast<size_t>(lo);
  size_t i1 = std::min(g.size() - 1, i0 + 1);
  double f = s - lo;
  return (1 - f) * g[i0] + f * g[i1];
}
}  // namespace

std::optional<double> evaluate_setting(const ParamSetting& s, const std::string& tensor_name,
                                       double t) {
  if (!s.value.empty()) return interpolate(s.value, t);
  for (const auto& f : s.filters) {
    // First matching entry wins; the filter is a plain substring, not a pattern.
    if (!f.filter || *f.filter == "*" || tensor_name.find(*f.filter) != std::string::npos) {
      return interpolate(f.value, t);
    }
  }
  return std::nullopt;
}

}  // namespace amalgam
