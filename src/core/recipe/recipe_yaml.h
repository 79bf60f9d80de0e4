// Internal to recipe/: helpers that read yaml-cpp nodes while keeping line numbers, so
// every recipe error can say "PATH:LINE: message". Not part of the public contract.
#pragma once
#include <yaml-cpp/yaml.h>

#include <string>

#include "recipe/recipe.h"

namespace amalgam::recipe_yaml {

// 1-based line of a node (0 when yaml-cpp has no mark, e.g. for a missing value).
int line_of(const YAML::Node& node);

// Throws Error(Recipe) "PATH:LINE: message".
[[noreturn]] void fail_at(const std::string& path, int line, const std::string& message);

// Reads a scalar as a parameter number: YAML numbers, booleans (true = 1, false = 0, as
// mergekit's schema coerces them), and quoted numeric strings. nullopt otherwise.
std::optional<double> scalar_number(const YAML::Node& node);

// Short human description of a node for messages: "a mapping", "the string 'abc'".
std::string describe(const YAML::Node& node);

// Parses a `parameters:` mapping (METHODS.md §1.4 value forms). `owner_line` is used
// when the mapping itself carries no mark.
ParamMap parse_param_map(const std::string& path, const YAML::Node& node, int owner_line);

}  // namespace amalgam::recipe_yaml
