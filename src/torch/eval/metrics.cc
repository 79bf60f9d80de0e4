// Task metrics; see metrics.h.
#include "torch/eval/metrics.h"

#include <cmath>

namespace amalgam {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string strip(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

}  // namespace

ChoiceOutcome score_choices(const std::vector<double>& ll, const std::vector<std::string>& choices, int64_t gold) {
  ChoiceOutcome o;
  double best = -INFINITY, best_norm = -INFINITY;
  for (size_t i = 0; i < ll.size(); ++i) {
    double norm = ll[i] / static_cast<double>(std::max<size_t>(1, choices[i].size()));
    if (ll[i] > best) best = ll[i], o.pred = static_cast<int64_t>(i);
    if (norm > best_norm) best_norm = norm, o.pred_norm = static_cast<int64_t>(i);
  }
  o.acc = o.pred == gold ? 1.0 : 0.0;
  o.acc_norm = o.pred_norm == gold ? 1.0 : 0.0;
  return o;
}

int64_t count_words(const std::string& text) {
  // len(re.split(r"\s+", text)): separators + 1, where runs of whitespace are one separator
  // (leading/trailing whitespace yields empty pieces that Python counts too).
  int64_t n = 1;
  for (size_t i = 0; i < text.size();) {
    if (is_space(text[i])) {
      ++n;
      while (i < text.size() && is_space(text[i])) ++i;
    } else {
      ++i;
    }
  }
  return n;
}

double PerplexityTotals::token_perplexity() const { return std::exp(-log_likelihood / tokens); }
double PerplexityTotals::word_perplexity() const { return std::exp(-log_likelihood / words); }
double PerplexityTotals::byte_perplexity() const { return std::exp(-log_likelihood / bytes); }
double PerplexityTotals::bits_per_byte() const { return -log_likelihood / bytes / std::log(2.0); }

std::string cut_at_stop(const std::string& text, const std::vector<std::string>& until) {
  size_t cut = text.size();
  for (const auto& stop : until)
    if (!stop.empty()) cut = std::min(cut, text.find(stop) == std::string::npos ? text.size() : text.find(stop));
  return text.substr(0, cut);
}

double exact_match(const std::string& prediction, const std::string& target) {
  return strip(prediction) == strip(target) ? 1.0 : 0.0;
}

}  // namespace amalgam
