#include "recipe/chat_templates.h"

#include <utility>

namespace amalgam {
namespace {

// Each message framed the way the format's model card documents it; a generation prompt
// opens the assistant's turn.
const std::vector<std::pair<std::string, std::string>>& templates() {
  static const std::vector<std::pair<std::string, std::string>> t = {
      {"chatml",
       "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
       "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"},
      {"llama3",
       "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
       "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
       "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"},
      {"alpaca",
       "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}"
       "{{ message['content'] + '\\n\\n' }}{% elif message['role'] == 'user' %}"
       "{{ '### Instruction:\\n' + message['content'] + '\\n\\n' }}{% elif message['role'] == 'assistant' %}"
       "{{ '### Response:\\n' + message['content'] + eos_token + '\\n\\n' }}{% endif %}{% endfor %}"
       "{% if add_generation_prompt %}{{ '### Response:\\n' }}{% endif %}"},
      {"mistral",
       "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
       "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
       "{{ message['content'] + eos_token }}{% endif %}{% endfor %}"},
      {"zephyr",
       "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token + "
       "'\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"},
      {"gemma",
       "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'assistant' %}{% set role = 'model' %}"
       "{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n' + "
       "message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}"
       "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"},
  };
  return t;
}

}  // namespace

const std::vector<std::string>& builtin_chat_template_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& [name, text] : templates()) n.push_back(name);
    return n;
  }();
  return names;
}

std::optional<std::string> builtin_chat_template(const std::string& name) {
  for (const auto& [n, text] : templates())
    if (n == name) return text;
  return std::nullopt;
}

}  // namespace amalgam
