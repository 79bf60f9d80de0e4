#include "plan/tensor_names.h"

#include <algorithm>
#include <cctype>

#include "plan/plan.h"

namespace amalgam {
namespace {

std::vector<std::string> split_dots(const std::string& name) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t dot = name.find('.', start);
    parts.push_back(name.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) return parts;
    start = dot + 1;
  }
}

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() <= 9 &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

// Component position of the layer number, or -1.
int layer_component(const std::vector<std::string>& parts) {
  for (size_t i = 0; i + 2 < parts.size(); ++i) {
    const std::string& p = parts[i];
    if ((p == "layers" || p == "h" || p == "blocks" || p == "layer") && all_digits(parts[i + 1])) {
      return static_cast<int>(i + 1);
    }
  }
  return -1;
}

bool has_component(const std::string& name, std::initializer_list<const char*> names) {
  for (const std::string& part : split_dots(name))
    for (const char* n : names)
      if (part == n) return true;
  return false;
}

}  // namespace

int layer_index(const std::string& tensor_name) {
  auto parts = split_dots(tensor_name);
  int c = layer_component(parts);
  return c < 0 ? -1 : std::stoi(parts[c]);
}

std::string with_layer_index(const std::string& name, int index) {
  auto parts = split_dots(name);
  int c = layer_component(parts);
  if (c < 0) return name;
  parts[c] = std::to_string(index);
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += '.';
    out += parts[i];
  }
  return out;
}

bool is_pre_tensor_name(const std::string& name) {
  if (is_output_head_name(name)) return false;
  for (const std::string& part : split_dots(name)) {
    if (part == "wte" || part == "wpe" || part.find("embed") != std::string::npos) return true;
  }
  return false;
}

bool is_output_head_name(const std::string& name) {
  return has_component(name, {"lm_head", "embed_out"});
}

bool is_vocab_embedding_name(const std::string& name) {
  return has_component(name, {"embed_tokens", "wte", "embed_in", "word_embeddings",
                              "tok_embeddings", "lm_head", "embed_out"});
}

std::optional<std::string> tied_embedding_name(const ModelDir& model) {
  for (const std::string& n : model.tensor_names()) {
    if (layer_index(n) >= 0 || is_output_head_name(n)) continue;
    if (has_component(n,
                      {"embed_tokens", "wte", "embed_in", "word_embeddings", "tok_embeddings"}) &&
        n.size() > 7 && n.compare(n.size() - 7, 7, ".weight") == 0) {
      return n;
    }
  }
  return std::nullopt;
}

int count_layers(const ModelDir& model) {
  int n = 0;
  for (const std::string& name : model.tensor_names()) n = std::max(n, layer_index(name) + 1);
  return n;
}

}  // namespace amalgam
