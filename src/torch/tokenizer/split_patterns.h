// The regexes that Hugging Face pre-tokenizers split text with (GPT-2's ByteLevel
// pattern, the Llama-3 and Qwen2 Split patterns), as hand-written matchers over code
// points: std::regex has no \p{L}. Each reproduces Oniguruma's leftmost, first-
// alternative-wins semantics, backtracking included (\s+(?!\S), \s*[\r\n]+).
#pragma once
#include <cstddef>
#include <optional>
#include <string_view>
#include <vector>

namespace amalgam {

enum class SplitPattern { Gpt2, Llama3, Qwen2 };

// The matcher for a regex string as it appears in tokenizer.json, if it is one we know.
std::optional<SplitPattern> find_split_pattern(std::string_view regex);

struct ByteRange {
  size_t begin, end;
};
// Non-overlapping matches, left to right, as byte ranges of `text` (valid UTF-8), like
// Rust's Regex::find_iter. Text between matches is not reported.
std::vector<ByteRange> find_matches(SplitPattern pattern, std::string_view text);

}  // namespace amalgam
