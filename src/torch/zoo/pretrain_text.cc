// Words are mostly random letter strings (so copying, not memorising, is what pays off),
// some from a small Zipf-ish lexicon so frequent words exist as in real text.
#include "torch/zoo/pretrain_text.h"

#include <cctype>
#include <vector>

namespace amalgam::zoo {
namespace {

const std::vector<std::string>& lexicon() {
  static const std::vector<std::string> words = {
      "the", "of", "and", "to", "in", "is", "it", "on", "a", "by", "as", "at", "we", "or",
      "an", "be", "so", "if", "no", "up", "key", "sum", "next", "word", "list", "value"};
  return words;
}

std::string random_word(ZooRng& rng) {
  const double r = rng.uniform();
  std::string w;
  if (r < 0.25) {
    // Zipf-like: earlier lexicon entries more often.
    const auto& lex = lexicon();
    w = lex[rng.below(rng.below(lex.size()) + 1)];
  } else if (r < 0.35) {
    w.assign(static_cast<size_t>(rng.range(1, 3)), '0');
    for (char& c : w) c = rng.digit();
  } else {
    w.assign(static_cast<size_t>(rng.range(1, 7)), 'a');
    for (char& c : w) c = rng.letter();
  }
  if (rng.chance(0.12)) w[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(w[0])));
  if (rng.chance(0.04)) {
    for (char& c : w) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return w;
}

}  // namespace

std::string pretrain_text(ZooRng& rng, size_t length) {
  static const char kPunct[] = {':', ',', '.', '=', '+'};
  std::vector<std::string> words;  // history, for copies
  std::string text;
  while (text.size() < length) {
    if (words.size() >= 2 && rng.chance(0.3)) {
      // Repeat a recent span of 1-4 words verbatim.
      const size_t span = std::min<size_t>(words.size(), static_cast<size_t>(rng.range(1, 4)));
      const size_t back = std::min<size_t>(words.size() - span, rng.below(8));
      const size_t start = words.size() - span - back;
      for (size_t i = 0; i < span; ++i) {
        const std::string w = words[start + i];
        text += w;
        text += ' ';
        words.push_back(w);
      }
    } else {
      const std::string w = random_word(rng);
      text += w;
      words.push_back(w);
      if (rng.chance(0.08)) text += kPunct[rng.below(sizeof kPunct)];
      text += rng.chance(0.07) ? '\n' : ' ';
    }
  }
  text.resize(length);
  return text;
}

}  // namespace amalgam::zoo
