#include "plan/tokenizer_merge.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "util/error.h"

namespace amalgam {
namespace {

using ojson = nlohmann::ordered_json;

int64_t vocab_size_or(const ModelDir& m, const Vocabulary& v) {
  if (auto n = config_vocab_size(m)) return *n;
  int64_t top = 0;
  for (const auto& e : v.entries) top = std::max(top, e.second + 1);
  return top;
}

// The tokenizer of `m` without the entries whose id is >= its vocab_size (§4 step 1).
Vocabulary stripped(const Vocabulary& v, int64_t vocab_size, std::vector<std::string>& removed) {
  Vocabulary out;
  out.file = v.file;
  out.ids.reserve(v.entries.size());
  for (const auto& e : v.entries) {
    if (e.second < vocab_size) {
      out.entries.push_back(e);
      out.ids[e.first] = e.second;
    } else {
      removed.push_back(e.first);
    }
  }
  for (const auto& t : v.added)
    if (t["id"].get<int64_t>() < vocab_size) out.added.push_back(t);
  return out;
}

// An AddedToken as transformers' add_tokens(str) makes it.
ojson plain_added(const std::string& token) {
  return ojson{{"id", 0},          {"content", token}, {"single_word", false}, {"lstrip", false},
               {"rstrip", false},  {"normalized", true}, {"special", false}};
}

std::string dump(const ojson& j) {
  return j.dump(2, ' ', /*ensure_ascii=*/false, ojson::error_handler_t::replace) + "\n";
}

// The donor's tokenizer files rewritten: entries `removed` dropped (ids >= vocab_size),
// `appended` added. Only files that change are returned.
std::map<std::string, std::string> rewrite_files(const ModelDir& donor, const std::set<std::string>& removed,
                                                 int64_t vocab_size, const std::vector<ojson>& appended) {
  std::map<std::string, std::string> files;
  if (removed.empty() && appended.empty()) return files;
  if (auto text = read_model_file(donor, "tokenizer.json")) {
    // Unordered (sorted keys): ordered_json's linear key search is quadratic in the
    // vocabulary. Key order carries no meaning in tokenizer.json.
    nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
    if (!j.is_discarded() && j.is_object()) {
      if (!removed.empty() && j.contains("model") && j["model"].is_object()) {
        nlohmann::json& model = j["model"];
        if (model.contains("vocab") && model["vocab"].is_object()) {
          nlohmann::json kept = nlohmann::json::object();
          for (auto& [tok, id] : model["vocab"].items())
            if (!removed.count(tok)) kept[tok] = id;
          model["vocab"] = std::move(kept);
        } else if (model.contains("vocab") && model["vocab"].is_array() &&
                   static_cast<int64_t>(model["vocab"].size()) > vocab_size) {
          nlohmann::json kept = nlohmann::json::array();
          for (int64_t i = 0; i < vocab_size; ++i) kept.push_back(model["vocab"][i]);
          model["vocab"] = std::move(kept);
        }
        if (model.contains("merges") && model["merges"].is_array()) {
          nlohmann::json kept = nlohmann::json::array();
          for (const auto& m : model["merges"]) {
            std::vector<std::string> parts;
            if (m.is_string()) {
              const std::string& s = m.get_ref<const std::string&>();
              auto sp = s.find(' ');
              if (sp != std::string::npos) parts = {s.substr(0, sp), s.substr(sp + 1)};
            } else if (m.is_array()) {
              for (const auto& p : m)
                if (p.is_string()) parts.push_back(p.get<std::string>());
            }
            bool keep = true;
            for (const auto& p : parts) keep &= !removed.count(p);
            if (keep) kept.push_back(m);
          }
          model["merges"] = std::move(kept);
        }
      }
      nlohmann::json added = nlohmann::json::array();
      if (j.contains("added_tokens") && j["added_tokens"].is_array())
        for (const auto& t : j["added_tokens"])
          if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() || t["id"].get<int64_t>() < vocab_size)
            added.push_back(t);
      for (const auto& s : appended) added.push_back(nlohmann::json::parse(s.dump()));
      j["added_tokens"] = std::move(added);
      files["tokenizer.json"] =
          j.dump(2, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace) + "\n";
    }
  } else if (!appended.empty()) {
    // Slow tokenizers (vocab.json / tokenizer.model) keep added tokens in added_tokens.json.
    ojson j = ojson::object();
    if (auto text = read_model_file(donor, "added_tokens.json")) {
      ojson old = ojson::parse(*text, nullptr, false);
      if (old.is_object()) j = old;
    }
    for (const auto& s : appended) j[s["content"].get<std::string>()] = s["id"];
    files["added_tokens.json"] = dump(j);
  }
  if (auto text = read_model_file(donor, "tokenizer_config.json")) {
    ojson j = ojson::parse(*text, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains("added_tokens_decoder") &&
        j["added_tokens_decoder"].is_object()) {
      ojson decoder = ojson::object();
      for (auto& [id, spec] : j["added_tokens_decoder"].items()) {
        char* end = nullptr;
        long long n = std::strtoll(id.c_str(), &end, 10);
        if (end == id.c_str() || n < vocab_size) decoder[id] = spec;
      }
      for (const auto& s : appended) {
        ojson e = s;
        e.erase("id");
        decoder[std::to_string(s["id"].get<int64_t>())] = e;
      }
      j["added_tokens_decoder"] = std::move(decoder);
      files["tokenizer_config.json"] = dump(j);
    }
  }
  return files;
}

}  // namespace

std::optional<VocabularyPlan> plan_vocabulary(const std::string& source, size_t base,
                                              std::optional<size_t> source_model,
                                              const std::vector<size_t>& models, const ModelSet& set,
                                              const std::vector<TokenSpec>& tokens) {
  std::optional<Vocabulary> base_vocab = load_vocabulary(set.at(base));
  if (!base_vocab) return std::nullopt;
  VocabularyPlan plan;
  std::vector<std::string> removed_list;
  const int64_t base_size = vocab_size_or(set.at(base), *base_vocab);
  plan.vocab_of[base] = stripped(*base_vocab, base_size, removed_list);
  base_vocab.reset();
  const Vocabulary& base_stripped = plan.vocab_of[base];

  // Every model's vocabulary; a model without tokenizer files is taken to share the
  // base's (mergekit: "Assuming same as base").
  std::vector<size_t> order = {base};
  for (size_t m : models)
    if (std::find(order.begin(), order.end(), m) == order.end()) order.push_back(m);
  if (source_model && std::find(order.begin(), order.end(), *source_model) == order.end())
    order.push_back(*source_model);
  std::map<size_t, bool> has_own;
  std::map<size_t, int64_t> size_of;  // the model's vocab_size: its ids past it are unused
  for (size_t m : order) {
    if (m == base) {
      has_own[m] = true;
      size_of[m] = base_size;
      continue;
    }
    auto v = load_vocabulary(set.at(m));
    has_own[m] = v.has_value();
    plan.vocab_of[m] = v ? std::move(*v) : base_stripped;
    size_of[m] = vocab_size_or(set.at(m), plan.vocab_of[m]);
  }

  // The output vocabulary and the tokens appended to the donor's tokenizer.
  const Vocabulary* out_start = &base_stripped;
  size_t donor = base;
  std::set<std::string> removed;
  if (source == "union" || source == "base") {
    removed.insert(removed_list.begin(), removed_list.end());
  } else {
    donor = *source_model;
    out_start = &plan.vocab_of[*source_model];
  }
  plan.ids.reserve(out_start->entries.size() + 1024);
  for (const auto& [tok, id] : out_start->entries) {
    if (static_cast<int64_t>(plan.tokens.size()) <= id) plan.tokens.resize(id + 1);
    plan.tokens[id] = tok;
    plan.ids[tok] = id;
  }
  std::vector<ojson> appended;  // tokens added to the donor's tokenizer, with their new ids
  auto append = [&](const std::string& tok, ojson spec) {
    if (plan.ids.count(tok)) return;
    const int64_t id = plan.size();
    spec["id"] = id;
    plan.tokens.push_back(tok);
    plan.ids[tok] = id;
    appended.push_back(std::move(spec));
  };
  if (source == "union") {
    // mergekit's build_union_tokenizer, with model order then old id for the order
    // Python leaves unspecified (METHODS.md §8.8).
    std::vector<std::string> out_vocab;
    std::set<std::string> in_out_vocab;
    std::vector<ojson> out_added;
    std::map<std::string, size_t> added_index;
    int differing = 0;
    for (size_t m : order) {
      if (!has_own[m]) continue;
      const Vocabulary& v = plan.vocab_of[m];
      const int64_t size = size_of[m];
      std::set<std::string> added_here;
      for (const auto& t : v.added) added_here.insert(t["content"].get<std::string>());
      for (const auto& [tok, id] : v.entries)
        if (id < size && !added_here.count(tok) && in_out_vocab.insert(tok).second) out_vocab.push_back(tok);
      for (const auto& t : v.added) {
        if (t["id"].get<int64_t>() >= size) continue;
        const std::string content = t["content"].get<std::string>();
        auto it = added_index.find(content);
        if (it == added_index.end()) {
          added_index[content] = out_added.size();
          out_added.push_back(t);
        } else {
          ojson a = out_added[it->second], b = t;
          a.erase("id"), b.erase("id");
          differing += a != b;
        }
      }
    }
    if (differing)
      plan.warnings.push_back(fmt::format(
          "tokenizer union: {} added token(s) are defined with different settings by different "
          "models; the first model's settings are used",
          differing));
    for (const std::string& tok : out_vocab)
      if (!added_index.count(tok)) append(tok, plain_added(tok));
    for (const ojson& t : out_added) append(t["content"].get<std::string>(), t);
  }
  for (const TokenSpec& t : tokens) append(t.token, plain_added(t.token));

  // Permutations (§4 step 3).
  for (size_t m : order) {
    const Vocabulary& v = plan.vocab_of[m];
    const int64_t size = size_of[m];
    std::vector<int64_t> p(plan.tokens.size(), -1);
    for (int64_t i = 0; i < plan.size(); ++i) {
      if (plan.tokens[i].empty() && !plan.ids.count("")) continue;
      auto id = v.id_of(plan.tokens[i]);
      if (id && *id < size) p[i] = *id;
      plan.identity &= p[i] == i;
    }
    plan.rows_of[m] = std::move(p);
  }
  plan.appended = static_cast<int64_t>(appended.size());
  plan.files = rewrite_files(set.at(donor), removed, source_model ? INT64_MAX : base_size, appended);
  return plan;
}

std::shared_ptr<RowRemap> plan_row_remap(const VocabularyPlan& vocab, const std::vector<size_t>& inputs,
                                         int base, const ModelSet& set,
                                         const std::vector<TokenSpec>& tokens, const Recipe& recipe,
                                         int64_t& tokens_in_no_model) {
  auto remap = std::make_shared<RowRemap>();
  const int64_t rows = vocab.size();
  remap->rows = rows;
  const size_t n = inputs.size();
  remap->own.assign(n, std::vector<int32_t>(static_cast<size_t>(rows), -1));
  std::vector<const std::vector<int64_t>*> p(n);
  for (size_t j = 0; j < n; ++j) p[j] = &vocab.rows_of.at(inputs[j]);
  std::unordered_map<std::string, const TokenSpec*> config;
  for (const TokenSpec& t : tokens) config[t.token] = &t;
  auto input_of = [&](const std::string& ref, const TokenSpec& t) -> size_t {
    for (size_t j = 0; j < n; ++j)
      if (set.at(inputs[j]).ref() == ref || set.at(inputs[j]).path() == ref) return j;
    throw Error(ErrorKind::Recipe,
                fmt::format("{}tokenizer.tokens.{}: its embedding comes from model '{}', which is not "
                            "an input of this tensor",
                            recipe.where(t.line), t.token, ref));
  };
  for (int64_t i = 0; i < rows; ++i) {
    const std::string& token = vocab.tokens[i];
    auto c = config.find(token);
    const TokenSpec* cfg = c == config.end() ? nullptr : c->second;
    const bool force = cfg && cfg->force;
    bool missing = false;
    for (size_t j = 0; j < n; ++j) {
      const int64_t r = (*p[j])[i];
      if (r >= 0 && !force) remap->own[j][i] = static_cast<int32_t>(r);
      else missing = true;
    }
    if (!missing) continue;
    RowRemap::Fallback f;
    if (cfg && cfg->source != TokenSpec::Source::Default) {
      if (cfg->source == TokenSpec::Source::Model) {
        const size_t j = input_of(cfg->model, *cfg);
        const int64_t r = (*p[j])[i];
        if (r < 0)
          throw Error(ErrorKind::Recipe, fmt::format("{}tokenizer.tokens.{}: model '{}' has no token '{}'",
                                                     recipe.where(cfg->line), token, cfg->model, token));
        f.from.push_back({static_cast<uint32_t>(j), r});
      } else if (cfg->source == TokenSpec::Source::ModelToken) {
        const size_t j = input_of(cfg->model, *cfg);
        int64_t r = -1;
        if (cfg->source_token_id) {
          r = *cfg->source_token_id;
        } else if (auto id = vocab.vocab_of.at(inputs[j]).id_of(*cfg->source_token)) {
          r = *id;
        } else {
          throw Error(ErrorKind::Recipe, fmt::format("{}tokenizer.tokens.{}: model '{}' has no token '{}'",
                                                     recipe.where(cfg->line), token, cfg->model,
                                                     *cfg->source_token));
        }
        f.from.push_back({static_cast<uint32_t>(j), r});
      }  // Zero: no rows
    } else {
      if (force)
        throw Error(ErrorKind::Recipe,
                    fmt::format("{}tokenizer.tokens.{}: force needs a source", recipe.where(cfg->line), token));
      // assign_embedding_sources: one holder -> its row; none -> zeros; the base -> its
      // row; else the mean of every holder's row.
      std::vector<size_t> holders;
      for (size_t j = 0; j < n; ++j)
        if ((*p[j])[i] >= 0) holders.push_back(j);
      if (holders.empty()) {
        ++tokens_in_no_model;
      } else if (holders.size() == 1 || (base >= 0 && (*p[base])[i] >= 0)) {
        const size_t j = holders.size() == 1 ? holders[0] : static_cast<size_t>(base);
        f.from.push_back({static_cast<uint32_t>(j), (*p[j])[i]});
      } else {
        for (size_t j : holders) f.from.push_back({static_cast<uint32_t>(j), (*p[j])[i]});
      }
    }
    remap->fallback_of.resize(static_cast<size_t>(rows), -1);
    remap->fallback_of[i] = static_cast<int32_t>(remap->fallbacks.size());
    remap->fallbacks.push_back(std::move(f));
  }
  return remap;
}

}  // namespace amalgam
