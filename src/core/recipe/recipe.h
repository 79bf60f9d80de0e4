// A merge recipe in the mergekit YAML schema, parsed and validated with line numbers.
// Parameter settings keep their YAML form (number, gradient list, or filter list) and
// are evaluated per tensor by the planner (METHODS.md §1.4). Errors: Error(Recipe) with
// "RECIPE:LINE: message".
#pragma once
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace amalgam {

// A number, a gradient (list of numbers interpolated over layers), or a filter list.
struct ParamValue;
struct FilterEntry {
  std::optional<std::string> filter;  // absent or "*" matches every tensor
  std::vector<double> value;          // 1 element = constant, more = gradient
  int line = 0;
};
struct ParamSetting {
  // Exactly one of: `value` non-empty (number/gradient) or `filters` non-empty.
  std::vector<double> value;
  std::vector<FilterEntry> filters;
  int line = 0;
};
using ParamMap = std::vector<std::pair<std::string, ParamSetting>>;  // in recipe order

struct SourceSpec {
  std::string model;                   // directory or org/name
  std::optional<std::pair<int, int>> layer_range;  // slices: only
  ParamMap parameters;
  int line = 0;
};

struct SliceSpec {
  std::vector<SourceSpec> sources;
  ParamMap parameters;
  std::optional<std::string> merge_method;  // per-slice override
  std::optional<std::string> base_model;    // per-slice override
  int line = 0;
};

// One entry of `tokenizer.tokens` (METHODS.md §4 step 4): where a token's embedding row
// comes from when a model lacks it (or always, with `force`).
struct TokenSpec {
  enum class Source { Default, Model, ModelToken, Zero };
  std::string token;
  Source source = Source::Default;  // Default: only make sure the token exists
  std::string model;                // Model, ModelToken
  std::optional<std::string> source_token;  // ModelToken: by content ...
  std::optional<int64_t> source_token_id;   // ... or by the model's own id
  bool force = false;
  int line = 0;
};

struct TokenizerSpec {
  std::string source = "union";  // "base", "union", or a model reference
  std::optional<int> pad_to_multiple_of;
  std::vector<TokenSpec> tokens;  // recipe order
  int line = 0;
};

struct Recipe {
  std::string path;   // file the recipe came from ("<string>" when parsed from text)
  std::string text;   // verbatim YAML (written into the output dir and model card)
  std::string merge_method;
  int merge_method_line = 0;
  std::optional<std::string> base_model;
  int base_model_line = 0;
  std::vector<SourceSpec> models;    // `models:` form
  std::vector<SliceSpec> slices;     // `slices:` form
  ParamMap parameters;               // top-level
  std::optional<std::string> dtype, out_dtype;  // torch spellings, validated
  std::optional<std::string> tokenizer_source;  // legacy key
  std::optional<TokenizerSpec> tokenizer;       // current key
  std::optional<std::string> chat_template;  // checked by chat_template_value_ok
  // Lines of the optional keys above (0 when absent), for the planner's messages.
  int dtype_line = 0, out_dtype_line = 0, tokenizer_line = 0, parameters_line = 0;
  bool uses_slices() const { return !slices.empty(); }
  // "PATH:LINE: " prefix used by every recipe error message.
  std::string where(int line) const;
};

Recipe parse_recipe_file(const std::string& path);
Recipe parse_recipe_text(const std::string& text, const std::string& label = "<string>");

// Evaluates a setting at tensor `name` and interpolation coordinate t (METHODS.md §1.4).
// nullopt when a filter list has no matching entry ("unset").
std::optional<double> evaluate_setting(const ParamSetting& s, const std::string& tensor_name,
                                       double t);

// mergekit's chat_template values: "auto", a built-in name, or Jinja text (exec/chat_template.h).
std::vector<std::string> chat_template_names();
bool chat_template_value_ok(const std::string& value);

}  // namespace amalgam
