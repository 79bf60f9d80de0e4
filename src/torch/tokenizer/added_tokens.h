// Added tokens of tokenizer.json ("added_tokens"): the strings matched in the text
// before the model sees it, leftmost-longest, with the lstrip / rstrip / single_word
// rules of Rust tokenizers' AddedVocabulary.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace amalgam {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool single_word = false, lstrip = false, rstrip = false, normalized = false, special = false;
};

// A set of patterns searched in text with a byte trie.
class AddedTokenMatcher {
 public:
  // Finds `pattern` (the content, or its normalized form) as `token`.
  void add(std::string pattern, const AddedToken* token);
  bool empty() const { return nodes_.size() <= 1; }

  struct Segment {
    size_t begin, end;
    const AddedToken* token;  // nullptr for plain text
  };
  // Cuts `text` into plain-text and added-token segments (empty plain ones omitted).
  std::vector<Segment> split(std::string_view text) const;

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int>> next;
    const AddedToken* token = nullptr;
  };
  int child(int node, unsigned char c) const;
  std::vector<Node> nodes_{1};
};

}  // namespace amalgam
