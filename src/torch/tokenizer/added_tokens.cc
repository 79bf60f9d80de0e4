// Leftmost-longest search of added tokens with Rust tokenizers' strip rules.
#include "torch/tokenizer/added_tokens.h"

#include "torch/tokenizer/unicode.h"

namespace amalgam {

namespace {

bool is_word_char(uint32_t cp) { return is_letter(cp) || is_number(cp) || cp == '_'; }

// The last code point before byte `end` of `s` (s is valid UTF-8).
uint32_t code_point_before(std::string_view s, size_t end, size_t* start) {
  size_t b = end - 1;
  while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
  uint32_t cp;
  decode_utf8(s, b, &cp);
  *start = b;
  return cp;
}

}  // namespace

int AddedTokenMatcher::child(int node, unsigned char c) const {
  for (const auto& [k, v] : nodes_[node].next) {
    if (k == c) return v;
  }
  return -1;
}

void AddedTokenMatcher::add(std::string pattern, const AddedToken* token) {
  if (pattern.empty()) return;
  int node = 0;
  for (unsigned char c : pattern) {
    int n = child(node, c);
    if (n < 0) {
      n = static_cast<int>(nodes_.size());
      nodes_[node].next.push_back({c, n});
      nodes_.emplace_back();
    }
    node = n;
  }
  if (!nodes_[node].token) nodes_[node].token = token;  // the first definition wins
}

std::vector<AddedTokenMatcher::Segment> AddedTokenMatcher::split(std::string_view text) const {
  std::vector<Segment> out;
  size_t plain_start = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    // The longest added token starting at pos.
    const AddedToken* best = nullptr;
    size_t best_end = 0;
    for (int node = 0, i = static_cast<int>(pos); i < static_cast<int>(text.size());) {
      node = child(node, static_cast<unsigned char>(text[i]));
      if (node < 0) break;
      ++i;
      if (nodes_[node].token) best = nodes_[node].token, best_end = i;
    }
    uint32_t cp;
    if (best && best->single_word) {
      size_t s;
      const bool word_before = pos > 0 && is_word_char(code_point_before(text, pos, &s));
      const bool word_after = best_end < text.size() && (decode_utf8(text, best_end, &cp), is_word_char(cp));
      if (word_before || word_after) best = nullptr;
    }
    if (!best) {
      pos += decode_utf8(text, pos, &cp);
      continue;
    }
    size_t begin = pos, end = best_end;
    if (best->lstrip) {
      size_t s;
      while (begin > plain_start && is_whitespace(code_point_before(text, begin, &s))) begin = s;
    }
    if (best->rstrip) {
      for (size_t n; end < text.size() && (n = decode_utf8(text, end, &cp)) && is_whitespace(cp);) end += n;
    }
    if (begin > plain_start) out.push_back({plain_start, begin, nullptr});
    out.push_back({begin, end, best});
    plain_start = pos = end;
  }
  if (plain_start < text.size()) out.push_back({plain_start, text.size(), nullptr});
  return out;
}

}  // namespace amalgam
