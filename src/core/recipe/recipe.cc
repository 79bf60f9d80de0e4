// The recipe parser: mergekit's YAML schema (METHODS.md §1.1) read with yaml-cpp, keeping
// the line of every key so that each error is "PATH:LINE: message". Stricter than
// mergekit on purpose: unknown keys are errors, not silently ignored (docs/recipes.md).
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "methods/method.h"
#include "recipe/chat_templates.h"
#include "recipe/recipe_yaml.h"
#include "util/error.h"

namespace amalgam {
namespace {
using namespace recipe_yaml;

struct Reader {
  const std::string& path;

  // Iterates a mapping: calls `on(key, value, key_line)` per entry, rejecting duplicate
  // keys and keys not in `allowed` (with the list of allowed keys in the message).
  template <typename F>
  void each_key(const YAML::Node& map, const char* where, const std::set<std::string>& allowed,
                F&& on) const {
    std::set<std::string> seen;
    for (const auto& kv : map) {
      int line = line_of(kv.first);
      if (!kv.first.IsScalar()) fail_at(path, line, fmt::format("{}: keys must be strings", where));
      std::string key = kv.first.Scalar();
      if (!seen.insert(key).second) {
        fail_at(path, line, fmt::format("{}: key '{}' is given twice", where, key));
      }
      if (!allowed.count(key)) {
        fail_at(path, line,
                fmt::format("{}: unknown key '{}' (allowed: {})", where, key,
                            fmt::join(allowed, ", ")));
      }
      on(key, kv.second, line);
    }
  }

  std::string string_at(const YAML::Node& node, const std::string& key, int key_line) const {
    if (!node.IsScalar() || node.Scalar().empty()) {
      fail_at(path, node.IsNull() || !line_of(node) ? key_line : line_of(node),
              fmt::format("{}: expected a string, got {}", key, describe(node)));
    }
    return node.Scalar();
  }

  int int_at(const YAML::Node& node, const std::string& what, int key_line) const {
    int line = line_of(node) ? line_of(node) : key_line;
    if (!node.IsScalar()) {
      fail_at(path, line, fmt::format("{}: expected an integer, got {}", what, describe(node)));
    }
    const std::string& s = node.Scalar();
    char* end = nullptr;
    errno = 0;
    long v = std::strtol(s.c_str(), &end, 10);
    if (s.empty() || end != s.c_str() + s.size() || errno != 0 || v < INT32_MIN || v > INT32_MAX) {
      fail_at(path, line, fmt::format("{}: expected an integer, got '{}'", what, s));
    }
    return static_cast<int>(v);
  }

  std::string method_at(const YAML::Node& node, int key_line) const {
    std::string name = string_at(node, "merge_method", key_line);
    if (!find_method(name)) {
      fail_at(path, line_of(node),
              fmt::format("merge_method: unknown method '{}' (known: {})", name,
                          fmt::join(method_names(), ", ")));
    }
    return name;
  }

  // bfloat16 / float16 / float32 / int64, optional "torch." prefix (mergekit's list).
  std::string dtype_at(const YAML::Node& node, const std::string& key, int key_line) const {
    std::string s = string_at(node, key, key_line);
    std::string bare = s.rfind("torch.", 0) == 0 ? s.substr(6) : s;
    static const std::set<std::string> allowed = {"bfloat16", "float16", "float32", "int64"};
    if (!allowed.count(bare)) {
      fail_at(path, line_of(node),
              fmt::format("{}: unsupported dtype '{}' (use bfloat16, float16, float32 or int64)",
                          key, s));
    }
    return bare;
  }

  SourceSpec source_at(const YAML::Node& node, bool slice_source, const char* where) const {
    SourceSpec src;
    src.line = line_of(node);
    if (!node.IsMap()) {
      fail_at(path, src.line,
              fmt::format("{}: each entry must be a mapping with 'model:', got {}", where,
                          describe(node)));
    }
    std::set<std::string> allowed = {"model", "parameters"};
    if (slice_source) allowed.insert("layer_range");
    bool has_model = false;
    each_key(node, where, allowed, [&](const std::string& key, const YAML::Node& v, int line) {
      if (key == "model") {
        src.model = string_at(v, "model", line);
        has_model = true;
      } else if (key == "parameters") {
        src.parameters = parse_param_map(path, v, line);
      } else if (key == "layer_range") {
        if (!v.IsSequence() || v.size() != 2) {
          fail_at(path, line_of(v) ? line_of(v) : line,
                  fmt::format("layer_range: expected [first, end], got {}", describe(v)));
        }
        int a = int_at(v[0], "layer_range", line), b = int_at(v[1], "layer_range", line);
        if (a < 0 || b <= a) {
          fail_at(path, line_of(v),
                  fmt::format("layer_range: [{}, {}] is empty or negative (need 0 <= first < "
                              "end; the end is exclusive)",
                              a, b));
        }
        src.layer_range = std::make_pair(a, b);
      }
    });
    if (!has_model) fail_at(path, src.line, fmt::format("{}: entry has no 'model:'", where));
    if (slice_source && !src.layer_range) {
      fail_at(path, src.line, fmt::format("{}: source '{}' has no layer_range", where, src.model));
    }
    return src;
  }

  SliceSpec slice_at(const YAML::Node& node) const {
    SliceSpec slice;
    slice.line = line_of(node);
    if (!node.IsMap()) {
      fail_at(path, slice.line,
              fmt::format("slices: each slice must be a mapping with 'sources:', got {}",
                          describe(node)));
    }
    bool has_sources = false;
    each_key(node, "slice", {"sources", "parameters", "merge_method", "base_model"},
             [&](const std::string& key, const YAML::Node& v, int line) {
               if (key == "sources") {
                 if (!v.IsSequence() || v.size() == 0) {
                   fail_at(path, line_of(v) ? line_of(v) : line,
                           "sources: expected a non-empty list of {model, layer_range}");
                 }
                 for (const auto& s : v) slice.sources.push_back(source_at(s, true, "source"));
                 has_sources = true;
               } else if (key == "parameters") {
                 slice.parameters = parse_param_map(path, v, line);
               } else if (key == "merge_method") {
                 slice.merge_method = method_at(v, line);
               } else if (key == "base_model") {
                 slice.base_model = string_at(v, "base_model", line);
               }
             });
    if (!has_sources) fail_at(path, slice.line, "slice has no 'sources:'");
    return slice;
  }

  bool bool_at(const YAML::Node& node, const std::string& what, int key_line) const {
    int line = line_of(node) ? line_of(node) : key_line;
    if (node.IsScalar()) {
      const std::string& s = node.Scalar();
      if (s == "true" || s == "True" || s == "yes") return true;
      if (s == "false" || s == "False" || s == "no") return false;
    }
    fail_at(path, line, fmt::format("{}: expected true or false, got {}", what, describe(node)));
  }

  // tokenizer.tokens: {TOKEN: {source: MODEL | {kind: model_token, model, token | token_id}
  // | {kind: zero}, force: BOOL}} as mergekit's TokenEmbeddingConfig.
  std::vector<TokenSpec> tokens_at(const YAML::Node& node, int key_line) const {
    if (!node.IsMap()) {
      fail_at(path, line_of(node) ? line_of(node) : key_line,
              fmt::format("tokenizer.tokens: expected a mapping of token to {{source, force}}, got {}",
                          describe(node)));
    }
    std::vector<TokenSpec> out;
    std::set<std::string> seen;
    for (const auto& kv : node) {
      TokenSpec t;
      t.line = line_of(kv.first);
      if (!kv.first.IsScalar() || kv.first.Scalar().empty())
        fail_at(path, t.line, "tokenizer.tokens: keys must be token strings");
      t.token = kv.first.Scalar();
      if (!seen.insert(t.token).second)
        fail_at(path, t.line, fmt::format("tokenizer.tokens: token '{}' is given twice", t.token));
      const std::string where = "tokenizer.tokens." + t.token;
      if (kv.second.IsNull()) {
        out.push_back(std::move(t));
        continue;
      }
      if (!kv.second.IsMap())
        fail_at(path, line_of(kv.second) ? line_of(kv.second) : t.line,
                fmt::format("{}: expected a mapping {{source, force}}, got {}", where, describe(kv.second)));
      each_key(kv.second, where.c_str(), {"source", "force"},
               [&](const std::string& key, const YAML::Node& v, int line) {
                 if (key == "force") {
                   t.force = bool_at(v, where + ".force", line);
                 } else if (v.IsScalar()) {
                   t.source = TokenSpec::Source::Model;
                   t.model = string_at(v, where + ".source", line);
                 } else if (v.IsMap()) {
                   source_kind_at(v, where + ".source", line, t);
                 } else if (!v.IsNull()) {
                   fail_at(path, line_of(v) ? line_of(v) : line,
                           fmt::format("{}.source: expected a model or a mapping with 'kind', got {}",
                                       where, describe(v)));
                 }
               });
      out.push_back(std::move(t));
    }
    return out;
  }

  void source_kind_at(const YAML::Node& v, const std::string& where, int key_line, TokenSpec& t) const {
    std::string kind;
    for (const auto& kv : v)
      if (kv.first.IsScalar() && kv.first.Scalar() == "kind") kind = string_at(kv.second, where + ".kind", key_line);
    if (kind == "zero") {
      t.source = TokenSpec::Source::Zero;
      each_key(v, where.c_str(), {"kind"}, [](const std::string&, const YAML::Node&, int) {});
      return;
    }
    if (kind != "model_token")
      fail_at(path, key_line,
              fmt::format("{}: kind must be model_token or zero, got '{}'", where, kind));
    t.source = TokenSpec::Source::ModelToken;
    each_key(v, where.c_str(), {"kind", "model", "token", "token_id"},
             [&](const std::string& key, const YAML::Node& x, int line) {
               if (key == "model") t.model = string_at(x, where + ".model", line);
               if (key == "token") t.source_token = string_at(x, where + ".token", line);
               if (key == "token_id") {
                 int id = int_at(x, where + ".token_id", line);
                 if (id < 0) fail_at(path, line, fmt::format("{}.token_id must be >= 0", where));
                 t.source_token_id = id;
               }
             });
    if (t.model.empty()) fail_at(path, key_line, fmt::format("{}: model_token needs 'model'", where));
    if (t.source_token.has_value() == t.source_token_id.has_value())
      fail_at(path, key_line, fmt::format("{}: model_token needs exactly one of 'token' and 'token_id'", where));
  }

  TokenizerSpec tokenizer_at(const YAML::Node& node, int key_line) const {
    TokenizerSpec spec;
    spec.line = key_line;
    if (!node.IsMap()) {
      fail_at(path, line_of(node) ? line_of(node) : key_line,
              fmt::format("tokenizer: expected a mapping {{source, tokens, pad_to_multiple_of}}, "
                          "got {}",
                          describe(node)));
    }
    each_key(node, "tokenizer", {"source", "tokens", "pad_to_multiple_of"},
             [&](const std::string& key, const YAML::Node& v, int line) {
               if (key == "source") {
                 spec.source = string_at(v, "tokenizer.source", line);
               } else if (key == "tokens") {
                 spec.tokens = tokens_at(v, line);
               } else if (key == "pad_to_multiple_of") {
                 int m = int_at(v, "tokenizer.pad_to_multiple_of", line);
                 if (m <= 0) {
                   fail_at(path, line_of(v), "tokenizer.pad_to_multiple_of must be positive");
                 }
                 spec.pad_to_multiple_of = m;
               }
             });
    return spec;
  }
};

}  // namespace

std::string Recipe::where(int line) const { return fmt::format("{}:{}: ", path, line); }

std::vector<std::string> chat_template_names() {
  std::vector<std::string> names = {"auto"};
  for (const auto& n : builtin_chat_template_names()) names.push_back(n);
  return names;
}

bool chat_template_value_ok(const std::string& value) {
  return value == "auto" || builtin_chat_template(value) || value.find("{{") != std::string::npos ||
         value.find("{%") != std::string::npos;
}

Recipe parse_recipe_text(const std::string& text, const std::string& label) {
  Recipe r;
  r.path = label;
  r.text = text;
  Reader rd{r.path};
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    fail_at(label, e.mark.is_null() ? 1 : e.mark.line + 1, "invalid YAML: " + e.msg);
  }
  if (!root.IsMap()) {
    fail_at(label, line_of(root) ? line_of(root) : 1,
            "a recipe must be a YAML mapping with merge_method and models: or slices:");
  }
  int models_line = 0, slices_line = 0, tokenizer_source_line = 0, tokenizer_key_line = 0;
  rd.each_key(root, "recipe",
              {"merge_method", "base_model", "models", "slices", "modules", "parameters", "dtype",
               "out_dtype", "tokenizer_source", "tokenizer", "chat_template"},
              [&](const std::string& key, const YAML::Node& v, int line) {
                if (key == "merge_method") {
                  r.merge_method = rd.method_at(v, line);
                  r.merge_method_line = line;
                } else if (key == "base_model") {
                  if (v.IsNull()) return;  // `base_model:` left empty = none, as in mergekit
                  r.base_model = rd.string_at(v, "base_model", line);
                  r.base_model_line = line;
                } else if (key == "models") {
                  if (!v.IsSequence() || v.size() == 0) {
                    fail_at(label, line,
                            "models: expected a non-empty list of {model, parameters}");
                  }
                  for (const auto& m : v)
                    r.models.push_back(rd.source_at(m, false, "models entry"));
                  models_line = line;
                } else if (key == "slices") {
                  if (!v.IsSequence() || v.size() == 0) {
                    fail_at(label, line, "slices: expected a non-empty list of {sources}");
                  }
                  for (const auto& s : v) r.slices.push_back(rd.slice_at(s));
                  slices_line = line;
                } else if (key == "modules") {
                  fail_at(label, line,
                          "modules: is not supported by amalgam (use slices: for layer ranges of a "
                          "single-module model)");
                } else if (key == "parameters") {
                  r.parameters = parse_param_map(label, v, line);
                  r.parameters_line = line;
                } else if (key == "dtype") {
                  if (v.IsNull()) return;
                  r.dtype = rd.dtype_at(v, "dtype", line);
                  r.dtype_line = line;
                } else if (key == "out_dtype") {
                  if (v.IsNull()) return;
                  r.out_dtype = rd.dtype_at(v, "out_dtype", line);
                  r.out_dtype_line = line;
                } else if (key == "tokenizer_source") {
                  if (v.IsNull()) return;
                  r.tokenizer_source = rd.string_at(v, "tokenizer_source", line);
                  tokenizer_source_line = line;
                } else if (key == "tokenizer") {
                  if (v.IsNull()) return;
                  r.tokenizer = rd.tokenizer_at(v, line);
                  tokenizer_key_line = line;
                } else if (key == "chat_template") {
                  if (v.IsNull()) return;
                  r.chat_template = rd.string_at(v, "chat_template", line);
                  if (!chat_template_value_ok(*r.chat_template))
                    fail_at(label, line,
                            fmt::format("chat_template '{}': not a known name ({}) nor Jinja template text",
                                        *r.chat_template, fmt::join(chat_template_names(), ", ")));
                }
              });
  if (r.merge_method.empty()) {
    fail_at(label, 1,
            fmt::format("missing merge_method (known: {})", fmt::join(method_names(), ", ")));
  }
  if (models_line && slices_line) {
    fail_at(label, std::max(models_line, slices_line), "give either models: or slices:, not both");
  }
  if (!models_line && !slices_line) fail_at(label, 1, "the recipe needs models: or slices:");
  if (tokenizer_source_line && tokenizer_key_line) {
    fail_at(label, std::max(tokenizer_source_line, tokenizer_key_line),
            "give either tokenizer_source: or tokenizer:, not both");
  }
  r.tokenizer_line = tokenizer_source_line ? tokenizer_source_line : tokenizer_key_line;
  return r;
}

Recipe parse_recipe_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::Io, fmt::format("{}: cannot open recipe file", path));
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(ErrorKind::Io, fmt::format("{}: cannot read recipe file", path));
  return parse_recipe_text(ss.str(), path);
}

}  // namespace amalgam
