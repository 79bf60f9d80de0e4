// The metrics of amalgam's task types as pure functions of scored numbers, defined as
// lm-evaluation-harness defines them, so that they can be checked on hand-computed cases:
// multiple choice acc / acc_norm, perplexities of summed log-likelihoods, exact match.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace amalgam {

struct ChoiceOutcome {
  int64_t pred = 0, pred_norm = 0;  // argmax of ll, of ll / byte length (first wins ties)
  double acc = 0, acc_norm = 0;
};
// log_likelihoods[i]: summed log-probability of choice i's continuation tokens;
// acc_norm divides each by the byte length of the choice text (lm-eval's acc_norm).
ChoiceOutcome score_choices(const std::vector<double>& log_likelihoods,
                            const std::vector<std::string>& choices, int64_t gold);

// Whitespace-separated words as lm-eval counts them (re.split(r"\s+", text)).
int64_t count_words(const std::string& text);

struct PerplexityTotals {
  double log_likelihood = 0;  // summed, natural log
  int64_t tokens = 0, words = 0, bytes = 0;
  double token_perplexity() const;  // exp(-ll / tokens)
  double word_perplexity() const;   // exp(-ll / words)
  double byte_perplexity() const;   // exp(-ll / bytes)
  double bits_per_byte() const;     // -ll / bytes / ln 2
};

// Generation cut at the first stop string; exact match compares after stripping
// surrounding whitespace.
std::string cut_at_stop(const std::string& text, const std::vector<std::string>& until);
double exact_match(const std::string& prediction, const std::string& target);

}  // namespace amalgam
