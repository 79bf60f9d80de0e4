#include "plan/vocabulary.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "util/error.h"

namespace amalgam {
namespace {

std::string path_of(const ModelDir& m, const std::string& name) {
  return (std::filesystem::path(m.path()) / name).string();
}

[[noreturn]] void bad(const std::string& file, const std::string& why) {
  throw Error(ErrorKind::Input, fmt::format("{}: {}", file, why));
}

// nlohmann::json, not ordered_json: ordered_json finds keys by linear search, quadratic
// for a 150k-token vocabulary (a minute for Qwen2's tokenizer.json).
nlohmann::json parse_object(const std::string& file, const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) bad(file, "not a JSON object");
  return j;
}

void add_entry(Vocabulary& v, const std::string& token, int64_t id) {
  if (id < 0) bad(v.file, fmt::format("token '{}' has a negative id {}", token, id));
  v.entries.emplace_back(token, id);
}

// tokenizer.json: model.vocab is {token: id} (BPE, WordPiece, WordLevel) or
// [[piece, score], ...] (Unigram, id = position); added_tokens [{id, content, ...}].
void read_tokenizer_json(Vocabulary& v, const std::string& text) {
  auto j = parse_object(v.file, text);
  if (j.contains("model") && j["model"].is_object() && j["model"].contains("vocab")) {
    const auto& vocab = j["model"]["vocab"];
    if (vocab.is_object()) {
      for (const auto& [tok, id] : vocab.items()) {
        if (!id.is_number_integer()) bad(v.file, fmt::format("model.vocab['{}'] is not an integer id", tok));
        add_entry(v, tok, id.get<int64_t>());
      }
    } else if (vocab.is_array()) {
      int64_t id = 0;
      for (const auto& e : vocab) {
        if (!e.is_array() || e.empty() || !e[0].is_string()) bad(v.file, fmt::format("model.vocab[{}] is not [piece, score]", id));
        add_entry(v, e[0].get<std::string>(), id++);
      }
    } else {
      bad(v.file, "model.vocab is neither an object nor an array");
    }
  }
  if (j.contains("added_tokens")) {
    if (!j["added_tokens"].is_array()) bad(v.file, "added_tokens is not an array");
    for (const auto& t : j["added_tokens"]) {
      if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() || !t.contains("content") ||
          !t["content"].is_string())
        bad(v.file, "an added_tokens entry lacks an integer 'id' or a string 'content'");
      v.added.push_back(nlohmann::ordered_json::parse(t.dump()));
    }
  }
}

// vocab.json {token: id}; added_tokens.json {token: id} beside it.
void read_vocab_json(Vocabulary& v, const std::string& text) {
  auto j = parse_object(v.file, text);
  for (const auto& [tok, id] : j.items()) {
    if (!id.is_number_integer()) bad(v.file, fmt::format("'{}' has no integer id", tok));
    add_entry(v, tok, id.get<int64_t>());
  }
}

void read_added_tokens_json(Vocabulary& v, const ModelDir& m) {
  auto text = read_model_file(m, "added_tokens.json");
  if (!text) return;
  const std::string file = path_of(m, "added_tokens.json");
  auto j = parse_object(file, *text);
  for (const auto& [tok, id] : j.items()) {
    if (!id.is_number_integer()) bad(file, fmt::format("'{}' has no integer id", tok));
    v.added.push_back({{"id", id.get<int64_t>()}, {"content", tok}});
  }
}

// The pieces of a SentencePiece ModelProto (field 1, repeated SentencePiece{1: piece}),
// read with a bounds-checked protobuf walk; every other field is skipped.
class ProtoReader {
 public:
  ProtoReader(const std::string& file, const uint8_t* p, size_t n) : file_(file), p_(p), end_(p + n) {}
  bool done() const { return p_ >= end_; }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) bad(file_, "truncated protobuf varint");
      uint8_t b = *p_++;
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    bad(file_, "malformed protobuf varint");
  }
  // Returns the field number; `len`/`data` are set for length-delimited fields.
  uint32_t field(const uint8_t*& data, uint64_t& len) {
    uint64_t key = varint();
    data = nullptr, len = 0;
    switch (key & 7) {
      case 0: varint(); break;
      case 1: skip(8); break;
      case 5: skip(4); break;
      case 2:
        len = varint();
        data = p_;
        skip(len);
        break;
      default: bad(file_, fmt::format("unsupported protobuf wire type {}", key & 7));
    }
    return static_cast<uint32_t>(key >> 3);
  }

 private:
  void skip(uint64_t n) {
    if (n > static_cast<uint64_t>(end_ - p_)) bad(file_, "truncated protobuf field");
    p_ += n;
  }
  const std::string& file_;
  const uint8_t* p_;
  const uint8_t* end_;
};

void read_sentencepiece(Vocabulary& v, const std::string& bytes) {
  ProtoReader model(v.file, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  int64_t id = 0;
  while (!model.done()) {
    const uint8_t* data;
    uint64_t len;
    if (model.field(data, len) != 1 || !data) continue;
    ProtoReader piece(v.file, data, len);
    std::optional<std::string> text;
    while (!piece.done()) {
      const uint8_t* d;
      uint64_t n;
      if (piece.field(d, n) == 1 && d) text = std::string(reinterpret_cast<const char*>(d), n);
    }
    if (!text) bad(v.file, fmt::format("piece {} has no text", id));
    add_entry(v, *text, id++);
  }
  if (v.entries.empty()) bad(v.file, "no SentencePiece pieces");
}

void read_vocab_txt(Vocabulary& v, const std::string& text) {
  std::istringstream in(text);
  std::string line;
  int64_t id = 0;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    add_entry(v, line, id++);
  }
}

// The parts of tokenizer.json that define token ids; formatting, truncation and padding
// settings do not change the vocabulary.
std::optional<nlohmann::json> tokenizer_json_vocab(const ModelDir& m) {
  auto text = read_model_file(m, "tokenizer.json");
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

nlohmann::json vocab_size_json(const ModelDir& m) {
  const auto& c = m.config();
  if (c.is_object() && c.contains("vocab_size")) return c["vocab_size"];
  return nullptr;
}

}  // namespace

std::optional<std::string> read_model_file(const ModelDir& m, const std::string& name) {
  std::ifstream in(std::filesystem::path(m.path()) / name, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool Vocabulary::is_added(const std::string& token) const {
  for (const auto& t : added)
    if (t["content"].get_ref<const std::string&>() == token) return true;
  return false;
}

std::optional<Vocabulary> load_vocabulary(const ModelDir& m) {
  Vocabulary v;
  if (auto text = read_model_file(m, "tokenizer.json")) {
    v.file = path_of(m, "tokenizer.json");
    read_tokenizer_json(v, *text);
  } else if (auto vj = read_model_file(m, "vocab.json")) {
    v.file = path_of(m, "vocab.json");
    read_vocab_json(v, *vj);
    read_added_tokens_json(v, m);
  } else if (auto vt = read_model_file(m, "vocab.txt")) {
    v.file = path_of(m, "vocab.txt");
    read_vocab_txt(v, *vt);
    read_added_tokens_json(v, m);
  } else if (auto sp = read_model_file(m, "tokenizer.model")) {
    v.file = path_of(m, "tokenizer.model");
    read_sentencepiece(v, *sp);
    read_added_tokens_json(v, m);
  } else {
    return std::nullopt;
  }
  std::stable_sort(v.added.begin(), v.added.end(),
                   [](const auto& a, const auto& b) { return a["id"].template get<int64_t>() < b["id"].template get<int64_t>(); });
  // get_vocab(): the model's vocabulary, then the added tokens (an added token that is
  // also a vocabulary token keeps the added token's id, as the HF added vocabulary does).
  v.ids.reserve(v.entries.size() + v.added.size());
  for (const auto& [tok, id] : v.entries) v.ids.emplace(tok, id);
  for (const auto& t : v.added) {
    const std::string& tok = t["content"].get_ref<const std::string&>();
    const int64_t id = t["id"].get<int64_t>();
    if (id < 0) bad(v.file, fmt::format("added token '{}' has a negative id {}", tok, id));
    auto it = v.ids.find(tok);
    if (it == v.ids.end() || it->second != id) {
      if (it != v.ids.end()) {
        auto e = std::find(v.entries.begin(), v.entries.end(), std::make_pair(tok, it->second));
        if (e != v.entries.end()) v.entries.erase(e);
      }
      v.ids[tok] = id;
      v.entries.emplace_back(tok, id);
    }
  }
  std::stable_sort(v.entries.begin(), v.entries.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  return v;
}

std::optional<int64_t> config_vocab_size(const ModelDir& m) {
  const auto& c = m.config();
  if (!c.is_object()) return std::nullopt;
  if (c.contains("vocab_size") && c["vocab_size"].is_number_integer()) return c["vocab_size"].get<int64_t>();
  if (c.contains("text_config") && c["text_config"].is_object()) {
    const auto& t = c["text_config"];
    if (t.contains("vocab_size") && t["vocab_size"].is_number_integer()) return t["vocab_size"].get<int64_t>();
  }
  return std::nullopt;
}

bool same_vocabulary(const ModelDir& a, const ModelDir& b) {
  if (vocab_size_json(a) != vocab_size_json(b)) return false;
  auto ja = tokenizer_json_vocab(a), jb = tokenizer_json_vocab(b);
  if (ja || jb) return ja && jb && *ja == *jb;
  for (const char* name : {"vocab.json", "merges.txt", "tokenizer.model", "added_tokens.json"}) {
    if (read_model_file(a, name) != read_model_file(b, name)) return false;
  }
  return true;
}

}  // namespace amalgam
