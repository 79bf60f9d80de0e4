// Hand-written matchers for the three pre-tokenizer regexes (see split_patterns.h).
#include "torch/tokenizer/split_patterns.h"

#include <cstdint>

#include "torch/tokenizer/unicode.h"

namespace amalgam {

namespace {

constexpr std::string_view kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr std::string_view kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// The text as code points, so that the matchers can look ahead and back cheaply.
struct Text {
  std::vector<uint32_t> cp;
  std::vector<size_t> offset;  // byte offset of each code point, plus the end
  explicit Text(std::string_view s) {
    cp.reserve(s.size());
    offset.reserve(s.size() + 1);
    for (size_t pos = 0; pos < s.size();) {
      uint32_t c;
      offset.push_back(pos);
      pos += decode_utf8(s, pos, &c);
      cp.push_back(c);
    }
    offset.push_back(s.size());
  }
  size_t size() const { return cp.size(); }
};

bool is_newline(uint32_t c) { return c == '\r' || c == '\n'; }
// [^\s\p{L}\p{N}]
bool is_other(uint32_t c) { return !is_whitespace(c) && !is_letter(c) && !is_number(c); }

template <typename Pred>
size_t run(const Text& t, size_t i, Pred pred) {
  while (i < t.size() && pred(t.cp[i])) ++i;
  return i;
}

uint32_t ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

// 's|'t|'re|'ve|'m|'ll|'d, optionally ASCII case-insensitive; returns the end or 0.
size_t match_contraction(const Text& t, size_t i, bool ignore_case) {
  if (t.cp[i] != '\'' || i + 1 >= t.size()) return 0;
  auto at = [&](size_t k) -> uint32_t {
    if (k >= t.size()) return 0;
    return ignore_case ? ascii_lower(t.cp[k]) : t.cp[k];
  };
  const uint32_t a = at(i + 1), b = at(i + 2);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
  return 0;
}

// " ?X+" where X is a predicate: an optional leading space, then a non-empty run.
template <typename Pred>
size_t match_space_run(const Text& t, size_t i, Pred pred) {
  size_t s = i;
  if (t.cp[i] == ' ' && i + 1 < t.size() && pred(t.cp[i + 1])) s = i + 1;
  if (!pred(t.cp[s])) return 0;
  return run(t, s, pred);
}

// \s+(?!\S) then \s+: a whitespace run leaves its last character to the next token when
// a non-space follows (that is what the backtracking of (?!\S) amounts to).
size_t match_whitespace(const Text& t, size_t i) {
  if (!is_whitespace(t.cp[i])) return 0;
  const size_t e = run(t, i, is_whitespace);
  if (e == t.size() || e - i == 1) return e;  // \s+(?!\S) at full length, or \s+
  return e - 1;
}

size_t match_gpt2(const Text& t, size_t i) {
  if (size_t e = match_contraction(t, i, false)) return e;
  if (size_t e = match_space_run(t, i, is_letter)) return e;
  if (size_t e = match_space_run(t, i, is_number)) return e;
  if (size_t e = match_space_run(t, i, is_other)) return e;
  return match_whitespace(t, i);
}

size_t match_llama3_like(const Text& t, size_t i, size_t max_digits) {
  if (size_t e = match_contraction(t, i, true)) return e;
  // [^\r\n\p{L}\p{N}]?\p{L}+
  const uint32_t c = t.cp[i];
  if (is_letter(c)) return run(t, i, is_letter);
  if (!is_newline(c) && !is_number(c) && i + 1 < t.size() && is_letter(t.cp[i + 1])) {
    return run(t, i + 1, is_letter);
  }
  // \p{N}{1,max}
  if (is_number(c)) {
    size_t e = i;
    while (e < t.size() && e - i < max_digits && is_number(t.cp[e])) ++e;
    return e;
  }
  // " ?[^\s\p{L}\p{N}]+[\r\n]*"
  if (size_t e = match_space_run(t, i, is_other)) return run(t, e, is_newline);
  // \s*[\r\n]+: the whitespace run up to and including its last newline.
  if (is_whitespace(c)) {
    const size_t e = run(t, i, is_whitespace);
    for (size_t k = e; k > i; --k) {
      if (is_newline(t.cp[k - 1])) return k;
    }
  }
  return match_whitespace(t, i);
}

}  // namespace

std::optional<SplitPattern> find_split_pattern(std::string_view regex) {
  if (regex == kGpt2Regex) return SplitPattern::Gpt2;
  if (regex == kLlama3Regex) return SplitPattern::Llama3;
  if (regex == kQwen2Regex) return SplitPattern::Qwen2;
  return std::nullopt;
}

std::vector<ByteRange> find_matches(SplitPattern pattern, std::string_view text) {
  const Text t(text);
  std::vector<ByteRange> out;
  for (size_t i = 0; i < t.size();) {
    size_t e = 0;
    switch (pattern) {
      case SplitPattern::Gpt2: e = match_gpt2(t, i); break;
      case SplitPattern::Llama3: e = match_llama3_like(t, i, 3); break;
      case SplitPattern::Qwen2: e = match_llama3_like(t, i, 1); break;
    }
    if (e > i) {
      out.push_back({t.offset[i], t.offset[e]});
      i = e;
    } else {
      ++i;  // no match here: like find_iter, try the next position
    }
  }
  return out;
}

}  // namespace amalgam
