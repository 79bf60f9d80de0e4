#include "exec/chat_template.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "exec/staging_dir.h"
#include "recipe/chat_templates.h"
#include "util/error.h"

namespace amalgam {
namespace fs = std::filesystem;
namespace {

std::optional<std::string> read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::optional<std::string> model_chat_template(const ModelDir& model) {
  if (auto text = read_text(fs::path(model.path()) / "chat_template.jinja")) return text;
  auto text = read_text(fs::path(model.path()) / "tokenizer_config.json");
  if (!text) return std::nullopt;
  auto j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("chat_template")) return std::nullopt;
  const auto& t = j["chat_template"];
  if (t.is_string()) return t.get<std::string>();
  if (t.is_array())
    for (const auto& e : t)
      if (e.is_object() && e.value("name", "") == "default" && e.contains("template") && e["template"].is_string())
        return e["template"].get<std::string>();
  return std::nullopt;
}

std::string resolve_chat_template(const std::string& value, const ModelSet& models) {
  if (auto builtin = builtin_chat_template(value)) return *builtin;
  if (value != "auto") return value;
  // The most common template among the inputs; the first seen wins a tie.
  std::map<std::string, size_t> count;
  std::vector<std::string> order;
  for (size_t i = 0; i < models.size(); ++i)
    if (auto t = model_chat_template(models.at(i)))
      if (count[*t]++ == 0) order.push_back(*t);
  if (order.empty())
    fail(ErrorKind::Recipe, "chat_template: auto: none of the input models has a chat template");
  std::string best = order.front();
  for (const auto& t : order)
    if (count[t] > count[best]) best = t;
  return best;
}

std::vector<std::string> write_chat_template(const std::string& dir, const std::string& tmpl, FileEnv* env) {
  std::vector<std::string> created;
  const fs::path config = fs::path(dir) / "tokenizer_config.json";
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  if (auto text = read_text(config)) {
    j = nlohmann::ordered_json::parse(*text, nullptr, false);
    if (!j.is_object())
      fail(ErrorKind::Input, "{}: tokenizer_config.json is not a JSON object; cannot set the chat template", dir);
  } else {
    created.push_back("tokenizer_config.json");
  }
  j["chat_template"] = tmpl;
  write_file(env, config.string(), j.dump(2) + "\n");
  const fs::path jinja = fs::path(dir) / "chat_template.jinja";
  if (fs::exists(jinja)) write_file(env, jinja.string(), tmpl);
  return created;
}

}  // namespace amalgam
