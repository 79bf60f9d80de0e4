// tokenizer.json loading, encoding and decoding (see hf_tokenizer.h).
#include "torch/tokenizer/hf_tokenizer.h"

#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/util/error.h"
#include "torch/tokenizer/added_tokens.h"
#include "torch/tokenizer/bpe_model.h"
#include "torch/tokenizer/pipeline.h"
#include "torch/tokenizer/unicode.h"

namespace amalgam {

namespace {

using nlohmann::json;

// What a post-processor adds around the ids of a single sequence.
struct SpecialFrame {
  std::vector<int32_t> prefix, suffix;
};

class HfTokenizer : public Tokenizer {
 public:
  HfTokenizer(const json& j, const TokenizerConfig& config, const std::string& file)
      : model_(check_model(j, file).at("model"), file) {
    normalizer_ = make_normalizer(j.value("normalizer", json()), file);
    pre_tokenizer_ = make_pre_tokenizer(j.value("pre_tokenizer", json()), file);
    decoder_ = make_decoder(j.value("decoder", json()), file);
    load_added_tokens(j.value("added_tokens", json::array()), file);
    if (j.contains("post_processor")) frame_ = parse_post_processor(j["post_processor"], file);

    auto resolve = [&](const std::optional<std::string>& tok) -> std::optional<int32_t> {
      return tok ? token_to_id(*tok) : std::nullopt;
    };
    bos_ = resolve(config.bos_token);
    eos_ = resolve(config.eos_token);
    pad_ = resolve(config.pad_token);
    // As transformers' LlamaTokenizerFast does: explicit add_bos_token / add_eos_token
    // in tokenizer_config.json replace the post-processor's template.
    if (config.add_bos_token || config.add_eos_token) {
      SpecialFrame f;
      if (config.add_bos_token.value_or(false) && bos_) f.prefix.push_back(*bos_);
      if (config.add_eos_token.value_or(false) && eos_) f.suffix.push_back(*eos_);
      frame_ = f;
    }
    if (!bos_ && frame_.prefix.size() == 1) bos_ = frame_.prefix[0];
    if (!eos_ && frame_.suffix.size() == 1) eos_ = frame_.suffix[0];
  }

  std::vector<int32_t> encode(std::string_view raw, bool add_special_tokens) const override {
    const std::string text = sanitize_utf8(raw);
    std::vector<int32_t> ids;
    if (add_special_tokens) ids = frame_.prefix;
    for (const auto& seg : raw_matcher_.split(text)) {
      if (seg.token) {
        ids.push_back(seg.token->id);
        continue;
      }
      std::string part = text.substr(seg.begin, seg.end - seg.begin);
      if (normalizer_) part = normalizer_->normalize(std::move(part));
      for (const auto& sub : normalized_matcher_.split(part)) {
        if (sub.token) {
          ids.push_back(sub.token->id);
          continue;
        }
        std::vector<Piece> pieces{{part.substr(sub.begin, sub.end - sub.begin), seg.begin == 0 && sub.begin == 0}};
        if (pre_tokenizer_) pre_tokenizer_->pre_tokenize(pieces);
        for (const auto& p : pieces) model_.encode_word(p.text, ids);
      }
    }
    if (add_special_tokens) ids.insert(ids.end(), frame_.suffix.begin(), frame_.suffix.end());
    return ids;
  }

  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const override {
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (int32_t id : ids) {
      const auto it = added_by_id_.find(id);
      if (it != added_by_id_.end()) {
        if (!(skip_special_tokens && it->second->special)) tokens.push_back(it->second->content);
      } else if (const std::string* t = model_.id_to_token(id)) {
        tokens.push_back(*t);
      }  // unknown ids are dropped, as Rust tokenizers does
    }
    if (!decoder_) {
      std::string out;
      for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
      return out;
    }
    std::string out;
    for (const auto& piece : decoder_->decode_chain(std::move(tokens))) out += piece;
    return out;
  }

  size_t vocab_size() const override {
    size_t extra = 0;
    for (const auto& t : added_) extra += model_.token_to_id(t->content) ? 0 : 1;
    return model_.size() + extra;
  }
  std::optional<int32_t> token_to_id(std::string_view token) const override {
    for (const auto& t : added_) {
      if (t->content == token) return t->id;
    }
    return model_.token_to_id(token);
  }
  std::optional<std::string> id_to_token(int32_t id) const override {
    const auto it = added_by_id_.find(id);
    if (it != added_by_id_.end()) return it->second->content;
    if (const std::string* t = model_.id_to_token(id)) return *t;
    return std::nullopt;
  }
  std::optional<int32_t> bos_id() const override { return bos_; }
  std::optional<int32_t> eos_id() const override { return eos_; }
  std::optional<int32_t> pad_id() const override { return pad_; }

 private:
  static const json& check_model(const json& j, const std::string& file) {
    if (!j.is_object() || !j.contains("model")) fail(ErrorKind::Input, "{}: no \"model\" object", file);
    const std::string type = j["model"].value("type", std::string("BPE"));
    if (type != "BPE") fail(ErrorKind::Input, "{}: model type '{}' is not supported (BPE is)", file, type);
    return j;
  }

  void load_added_tokens(const json& list, const std::string& file) {
    for (const auto& a : list) {
      auto t = std::make_unique<AddedToken>();
      t->id = a.at("id").get<int32_t>();
      t->content = a.at("content").get<std::string>();
      t->single_word = a.value("single_word", false);
      t->lstrip = a.value("lstrip", false);
      t->rstrip = a.value("rstrip", false);
      t->special = a.value("special", false);
      t->normalized = a.value("normalized", !t->special);
      added_by_id_[t->id] = t.get();
      if (t->normalized && normalizer_) {
        normalized_matcher_.add(normalizer_->normalize(t->content), t.get());
      } else if (t->normalized) {
        normalized_matcher_.add(t->content, t.get());
      } else {
        raw_matcher_.add(t->content, t.get());
      }
      added_.push_back(std::move(t));
    }
  }

  std::vector<int32_t> special_ids(const json& ref, const std::string& file) const {
    // RobertaProcessing/BertProcessing give ["<s>", 0]; the id is authoritative.
    if (ref.is_array() && ref.size() == 2) return {ref[1].get<int32_t>()};
    fail(ErrorKind::Input, "{}: bad special token in post_processor: {}", file, ref.dump());
  }

  SpecialFrame parse_post_processor(const json& p, const std::string& file) const {
    SpecialFrame f;
    if (p.is_null()) return f;
    const std::string type = p.at("type").get<std::string>();
    if (type == "ByteLevel") return f;
    if (type == "RobertaProcessing" || type == "BertProcessing") {
      f.prefix = special_ids(p.at("cls"), file);
      f.suffix = special_ids(p.at("sep"), file);
      return f;
    }
    if (type == "Sequence") {
      for (const auto& q : p.at("processors")) {
        SpecialFrame g = parse_post_processor(q, file);
        f.prefix.insert(f.prefix.begin(), g.prefix.begin(), g.prefix.end());
        f.suffix.insert(f.suffix.end(), g.suffix.begin(), g.suffix.end());
      }
      return f;
    }
    if (type == "TemplateProcessing") {
      const json& specials = p.value("special_tokens", json::object());
      bool seen_a = false;
      for (const auto& item : p.at("single")) {
        if (item.contains("Sequence")) {
          seen_a = true;
          continue;
        }
        const std::string name = item.at("SpecialToken").at("id").get<std::string>();
        if (!specials.contains(name)) {
          fail(ErrorKind::Input, "{}: TemplateProcessing uses '{}', missing from its special_tokens", file, name);
        }
        auto& dst = seen_a ? f.suffix : f.prefix;
        for (const auto& id : specials[name].at("ids")) dst.push_back(id.get<int32_t>());
      }
      return f;
    }
    fail(ErrorKind::Input, "{}: unsupported post_processor type '{}'", file, type);
  }

  BpeModel model_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<Decoder> decoder_;
  std::vector<std::unique_ptr<AddedToken>> added_;
  std::map<int32_t, const AddedToken*> added_by_id_;
  AddedTokenMatcher raw_matcher_, normalized_matcher_;
  SpecialFrame frame_;
  std::optional<int32_t> bos_, eos_, pad_;
};

std::optional<std::string> token_string(const json& j, const char* key) {
  if (!j.contains(key)) return std::nullopt;
  const json& v = j[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;  // null: no such token
}

}  // namespace

TokenizerConfig read_tokenizer_config(const std::string& path) {
  TokenizerConfig c;
  std::ifstream in(path);
  if (!in) return c;
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    fail(ErrorKind::Input, "{}: invalid JSON: {}", path, e.what());
  }
  if (!j.is_object()) fail(ErrorKind::Input, "{}: not a JSON object", path);
  c.bos_token = token_string(j, "bos_token");
  c.eos_token = token_string(j, "eos_token");
  c.pad_token = token_string(j, "pad_token");
  if (j.contains("add_bos_token") && j["add_bos_token"].is_boolean()) c.add_bos_token = j["add_bos_token"].get<bool>();
  if (j.contains("add_eos_token") && j["add_eos_token"].is_boolean()) c.add_eos_token = j["add_eos_token"].get<bool>();
  return c;
}

std::unique_ptr<Tokenizer> make_hf_tokenizer(const json& tokenizer_json, const TokenizerConfig& config,
                                             const std::string& file) {
  try {
    return std::make_unique<HfTokenizer>(tokenizer_json, config, file);
  } catch (const json::exception& e) {
    fail(ErrorKind::Input, "{}: malformed tokenizer: {}", file, e.what());
  }
}

std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::string& path, const TokenizerConfig& config) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorKind::Io, "{}: cannot open", path);
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    fail(ErrorKind::Input, "{}: invalid JSON: {}", path, e.what());
  }
  return make_hf_tokenizer(j, config, path);
}

}  // namespace amalgam
