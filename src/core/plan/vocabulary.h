// A model's tokenizer vocabulary as mergekit sees it through HF `get_vocab()`: token
// string -> id, from tokenizer.json (model vocab + added tokens), else vocab.json (+
// added_tokens.json), else vocab.txt, else tokenizer.model (the SentencePiece pieces).
// The planner uses it to decide whether models share one vocabulary and to build the
// output vocabulary of `tokenizer_source` (plan/tokenizer_merge.h).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/model_dir.h"

namespace amalgam {

struct Vocabulary {
  std::string file;  // the file it was read from (for messages)
  // Every token with its id, ascending by id (ties: model vocab before added tokens).
  std::vector<std::pair<std::string, int64_t>> entries;
  std::unordered_map<std::string, int64_t> ids;
  // Added tokens (tokenizer.json `added_tokens` objects, or {content} from
  // added_tokens.json), ascending by id.
  std::vector<nlohmann::ordered_json> added;
  bool is_added(const std::string& token) const;
  std::optional<int64_t> id_of(const std::string& token) const {
    auto it = ids.find(token);
    return it == ids.end() ? std::nullopt : std::optional<int64_t>(it->second);
  }
};

// nullopt: the model has no tokenizer file. Throws Error(Input) naming the file when one
// is there but malformed.
std::optional<Vocabulary> load_vocabulary(const ModelDir& model);

// The bytes of file `name` in the model's directory; nullopt when it cannot be read.
std::optional<std::string> read_model_file(const ModelDir& model, const std::string& name);

// config.json `vocab_size` (text_config.vocab_size for multimodal configs), if given.
std::optional<int64_t> config_vocab_size(const ModelDir& model);

bool same_vocabulary(const ModelDir& a, const ModelDir& b);

}  // namespace amalgam
