// The chat templates a recipe may name (`chat_template: llama3`), as mergekit ships them
// by name: chatml, llama3, alpaca, mistral, zephyr, gemma. Our own Jinja text of each
// format's published layout; "auto" (the inputs' most common template) is resolved by
// exec/chat_template.h, not here.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace amalgam {

// The built-in names, in a stable order (for messages).
const std::vector<std::string>& builtin_chat_template_names();
// The Jinja text of a built-in template, or nullopt for any other value.
std::optional<std::string> builtin_chat_template(const std::string& name);

}  // namespace amalgam
