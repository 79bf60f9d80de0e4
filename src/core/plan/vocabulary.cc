#include "plan/vocabulary.h"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace amalgam {
namespace {

std::optional<std::string> read_file(const ModelDir& m, const std::string& name) {
  std::filesystem::path p = std::filesystem::path(m.path()) / name;
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The parts of tokenizer.json that define token ids; formatting, truncation and padding
// settings do not change the vocabulary.
std::optional<nlohmann::json> tokenizer_json_vocab(const ModelDir& m) {
  auto text = read_file(m, "tokenizer.json");
  if (!text) return std::nullopt;
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return nlohmann::json("unparseable:" + *text);
  nlohmann::json out = nlohmann::json::object();
  if (j.contains("model") && j["model"].is_object()) {
    const auto& model = j["model"];
    if (model.contains("vocab")) out["vocab"] = model["vocab"];
    if (model.contains("merges")) out["merges"] = model["merges"];
  }
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    nlohmann::json added = nlohmann::json::array();
    for (const auto& t : j["added_tokens"]) {
      if (t.is_object()) added.push_back({t.value("id", -1), t.value("content", "")});
    }
    out["added"] = added;
  }
  return out;
}

nlohmann::json vocab_size(const ModelDir& m) {
  const auto& c = m.config();
  if (c.is_object() && c.contains("vocab_size")) return c["vocab_size"];
  return nullptr;
}

}  // namespace

bool same_vocabulary(const ModelDir& a, const ModelDir& b) {
  if (vocab_size(a) != vocab_size(b)) return false;
  auto ja = tokenizer_json_vocab(a), jb = tokenizer_json_vocab(b);
  if (ja || jb) return ja && jb && *ja == *jb;
  for (const char* name : {"vocab.json", "merges.txt", "tokenizer.model", "added_tokens.json"}) {
    if (read_file(a, name) != read_file(b, name)) return false;
  }
  return true;
}

}  // namespace amalgam
