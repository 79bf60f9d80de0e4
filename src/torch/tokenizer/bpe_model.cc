// BPE merging with a priority queue over a linked list of symbols (see bpe_model.h).
#include "torch/tokenizer/bpe_model.h"

#include <queue>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/util/error.h"
#include "torch/tokenizer/unicode.h"

namespace amalgam {

using nlohmann::json;

BpeModel::BpeModel(const json& model, const std::string& file) {
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(key) && model[key].is_string() && !model[key].get<std::string>().empty()) {
      fail(ErrorKind::Input, "{}: BPE {} is not supported", file, key);
    }
  }
  const json& vocab = model.at("vocab");
  if (!vocab.is_object()) fail(ErrorKind::Input, "{}: model.vocab is not an object", file);
  int32_t max_id = -1;
  for (const auto& [token, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
      fail(ErrorKind::Input, "{}: vocab entry '{}' has a bad id", file, token);
    }
    vocab_[token] = id.get<int32_t>();
    max_id = std::max(max_id, id.get<int32_t>());
  }
  tokens_.resize(max_id + 1);
  has_token_.assign(max_id + 1, false);
  for (const auto& [token, id] : vocab_) {
    tokens_[id] = token;
    has_token_[id] = true;
  }

  const json merges = model.value("merges", json::array());
  int32_t rank = 0;
  for (const auto& m : merges) {
    std::string a, b;
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos) fail(ErrorKind::Input, "{}: merge '{}' is not 'a b'", file, s);
      a = s.substr(0, sp), b = s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2) {
      a = m[0].get<std::string>(), b = m[1].get<std::string>();
    } else {
      fail(ErrorKind::Input, "{}: merge #{} is neither 'a b' nor [a, b]", file, rank);
    }
    const auto ia = vocab_.find(a), ib = vocab_.find(b), im = vocab_.find(a + b);
    if (ia == vocab_.end() || ib == vocab_.end() || im == vocab_.end()) {
      fail(ErrorKind::Input, "{}: merge #{} '{} {}' uses a token missing from the vocab", file, rank, a, b);
    }
    merges_.emplace(pair_key(ia->second, ib->second), Merge{rank, im->second});  // first rank wins
    ++rank;
  }

  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    const auto it = vocab_.find(model["unk_token"].get<std::string>());
    if (it != vocab_.end()) unk_ = it->second;
  }
  byte_fallback_ = model.value("byte_fallback", false);
  fuse_unk_ = model.value("fuse_unk", false);
  ignore_merges_ = model.value("ignore_merges", false);
  for (int b = 0; b < 256; ++b) {
    const auto it = vocab_.find(fmt::format("<0x{:02X}>", b));
    byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
  }
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  const auto it = vocab_.find(std::string(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || id >= static_cast<int32_t>(tokens_.size()) || !has_token_[id]) return nullptr;
  return &tokens_[id];
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  std::string key(word);
  if (ignore_merges_) {
    const auto it = vocab_.find(key);
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    const auto it = cache_.find(key);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  merge_word(word, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  if (key.size() > kMaxCachedWordBytes) return;  // whole texts without a pre-tokenizer
  std::lock_guard<std::mutex> lock(cache_mu_);
  if (cache_.size() >= kCacheCapacity) cache_.clear();  // crude but bounded
  cache_.emplace(std::move(key), std::move(ids));
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  // Initial symbols: one per character; a character missing from the vocab becomes its
  // <0xNN> byte tokens (byte_fallback) or unk (consecutive unks fused when fuse_unk).
  std::vector<int32_t> sym;
  bool last_unk = false;
  std::string ch;
  for (size_t pos = 0; pos < word.size();) {
    uint32_t cp;
    const size_t n = decode_utf8(word, pos, &cp);
    ch.assign(word.substr(pos, n));
    pos += n;
    const auto it = vocab_.find(ch);
    if (it != vocab_.end()) {
      sym.push_back(it->second);
      last_unk = false;
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (unsigned char c : ch) all = all && byte_ids_[c] >= 0;
      if (all) {
        for (unsigned char c : ch) sym.push_back(byte_ids_[c]);
        last_unk = false;
        continue;
      }
    }
    if (unk_) {
      if (!(fuse_unk_ && last_unk)) sym.push_back(*unk_);
      last_unk = true;
    }
  }
  const int n = static_cast<int>(sym.size());
  if (n > 1 && !merges_.empty()) {
    std::vector<int> prev(n), next(n);
    std::vector<bool> alive(n, true);
    for (int i = 0; i < n; ++i) prev[i] = i - 1, next[i] = i + 1 < n ? i + 1 : -1;
    struct Cand {
      int32_t rank;
      int pos;
      int32_t id;
      bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> queue;
    auto push = [&](int i) {
      if (i < 0 || next[i] < 0) return;
      const auto it = merges_.find(pair_key(sym[i], sym[next[i]]));
      if (it != merges_.end()) queue.push({it->second.rank, i, it->second.id});
    };
    for (int i = 0; i + 1 < n; ++i) push(i);
    while (!queue.empty()) {
      const Cand c = queue.top();
      queue.pop();
      const int i = c.pos;
      if (!alive[i] || next[i] < 0) continue;
      const auto it = merges_.find(pair_key(sym[i], sym[next[i]]));
      if (it == merges_.end() || it->second.id != c.id) continue;  // stale candidate
      const int j = next[i];
      sym[i] = c.id;
      alive[j] = false;
      next[i] = next[j];
      if (next[j] >= 0) prev[next[j]] = i;
      push(prev[i]);
      push(i);
    }
    for (int i = 0; i >= 0; i = next[i]) out.push_back(sym[i]);
    return;
  }
  out.insert(out.end(), sym.begin(), sym.end());
}

}  // namespace amalgam
