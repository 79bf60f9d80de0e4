// The recipe's `chat_template` (mergekit's schema): "auto" (the template most of the input
// models carry), a built-in name (recipe/chat_templates.h), or the Jinja text itself. The executor
// writes the resolved template into the output's tokenizer_config.json (and into a copied
// chat_template.jinja, which transformers would otherwise prefer).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "io/file_env.h"
#include "plan/plan.h"

namespace amalgam {

// The template a model directory carries (chat_template.jinja, else tokenizer_config.json's
// "chat_template": a string, or the "default" entry of a list of named templates).
std::optional<std::string> model_chat_template(const ModelDir& model);

// Resolves `value` against the input models. Throws Error(Recipe) for "auto" when no
// input model has a template.
std::string resolve_chat_template(const std::string& value, const ModelSet& models);

// Writes `tmpl` into `dir`/tokenizer_config.json (created when absent) and replaces
// `dir`/chat_template.jinja when present. Returns the files it created.
std::vector<std::string> write_chat_template(const std::string& dir, const std::string& tmpl, FileEnv* env);

}  // namespace amalgam
