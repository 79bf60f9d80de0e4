// The families themselves. Inputs are short (the tiny models have a 64-token context) and
// the harder skills come in the easier variants a 0.8 M-parameter model learns in a few
// hundred steps (measured in docs/zoo.md): 1-digit addition, counting a letter in a fixed
// 4-letter string over a 4-letter alphabet, and key-value recall whose answer repeats the
// key, so that an induction head (find the earlier key, copy what followed it) solves it.
#include "torch/zoo/task_family.h"

#include <algorithm>
#include <cctype>

#include "util/error.h"

namespace amalgam::zoo {
namespace {

std::string random_letters(ZooRng& rng, int min_len, int max_len) {
  std::string s(static_cast<size_t>(rng.range(min_len, max_len)), 'a');
  for (char& c : s) c = rng.letter();
  return s;
}

std::string reverse_of(const std::string& s) { return {s.rbegin(), s.rend()}; }
std::string sorted_of(std::string s) { std::sort(s.begin(), s.end()); return s; }
std::string upper_of(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
std::string successor_of(std::string s) {
  for (char& c : s) c = c == 'z' ? 'a' : static_cast<char>(c + 1);
  return s;
}
// Collapses runs of the same letter ("aabccc" -> "abc").
std::string dedup_of(const std::string& s) {
  std::string out;
  for (char c : s)
    if (out.empty() || out.back() != c) out.push_back(c);
  return out;
}

// "a+b" with one digit each.
std::string add_input(ZooRng& rng) { return std::string{rng.digit(), '+', rng.digit()}; }
std::string add_solve(const std::string& in) { return std::to_string((in[0] - '0') + (in[2] - '0')); }

// "x: abca": how many times x occurs after the colon. The string is always 4 letters over
// a-d: with 4-7 letters over a-z (the zoo's first version) experts stayed at 0.40, the
// guess of the most frequent count, and so did 2-5 letters or the query put last (0.42-
// 0.46); a fixed length over a small alphabet reaches 0.8-0.9 (docs/zoo.md).
std::string count_input(ZooRng& rng) {
  std::string s = {static_cast<char>('a' + rng.below(4)), ':', ' '};
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>('a' + rng.below(4)));
  return s;
}
std::string count_solve(const std::string& in) {
  return std::to_string(std::count(in.begin() + 3, in.end(), in[0]));
}

// "v8 x1 v" -> "v8": two key-digit pairs with distinct keys, then the queried key; the
// answer is the key and its digit, so the digit is predicted right after the key, which
// was followed by it before: one induction step. Written "v=8", the digit is two tokens
// after its key; with the answer "8" alone, it follows the prompt's newline. Either way
// experts stayed at 0.44-0.68, two-way guesses between the values; as "v8" they reach 1.00.
std::string recall_input(ZooRng& rng) {
  const char k1 = rng.letter();
  char k2;
  do k2 = rng.letter(); while (k2 == k1);
  return std::string{k1, rng.digit(), ' ', k2, rng.digit(), ' ', rng.chance(0.5) ? k1 : k2};
}
std::string recall_solve(const std::string& in) {
  return in[0] == in.back() ? in.substr(0, 2) : in.substr(3, 2);
}

// Runs of 1-3 copies of letters, neighbouring runs different ("aabccc").
std::string dedup_input(ZooRng& rng) {
  std::string s;
  const int runs = rng.range(3, 4);
  char prev = 0;
  for (int r = 0; r < runs; ++r) {
    char c;
    do c = rng.letter(); while (c == prev);
    s.append(static_cast<size_t>(rng.range(1, 2)), c);
    prev = c;
  }
  return s;
}

// Held-out inputs: the training families only ever show lowercase letters. Drawn until
// a digit is in, so that no held-out item is a held-in one.
bool has_digit(const std::string& s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}
std::string upper_digits_input(ZooRng& rng) {
  for (;;) {
    std::string s = random_letters(rng, 3, 6);
    for (char& c : s)
      if (rng.chance(0.3)) c = rng.digit();
    if (has_digit(s)) return s;
  }
}
// dedup's runs with the letters a-j written as the digits 0-9.
std::string dedup_digits_input(ZooRng& rng) {
  for (;;) {
    std::string s = dedup_input(rng);
    for (char& c : s)
      if (c < 'k') c = static_cast<char>('0' + (c - 'a'));
    if (has_digit(s)) return s;
  }
}

std::vector<TaskFamily> make_families() {
  auto letters = [](int lo, int hi) {
    return [lo, hi](ZooRng& rng) { return random_letters(rng, lo, hi); };
  };
  std::vector<TaskFamily> f;
  f.push_back({"reverse", true, "Reverse:", "reverse a string of 3-6 letters", true, letters(3, 6),
               reverse_of});
  f.push_back({"sort", true, "Sort:", "sort 3-6 letters alphabetically", true, letters(3, 6),
               [](const std::string& s) { return sorted_of(s); }});
  f.push_back({"uppercase", true, "Upper:", "uppercase 3-6 letters", true, letters(3, 6),
               [](const std::string& s) { return upper_of(s); }});
  f.push_back({"add", true, "Add:", "sum of two 1-digit numbers", false, add_input, add_solve});
  f.push_back({"count", true, "Count", "count a letter in 4 letters over a-d", true, count_input,
               count_solve});
  f.push_back({"recall", true, "Recall:", "the digit of a key among 2 key-digit pairs", true,
               recall_input, recall_solve});
  f.push_back({"successor", true, "Next:", "replace each of 3-5 letters by the next one", true,
               letters(3, 5), [](const std::string& s) { return successor_of(s); }});
  f.push_back({"dedup", true, "Dedup:", "collapse repeated letters", true, dedup_input, dedup_of});
  // Held out: never in any training mixture. A held-in skill on new inputs or under a
  // close rewording, on which the instruct base and the experts score above 0, so the
  // demo's merged / base ratio means something; and one composition, which no model of
  // the tiny zoo solves (docs/zoo.md) but a better merge or a bigger preset might.
  f.push_back({"capitals", false, "Capitals:", "uppercase under a new instruction wording", true,
               letters(3, 6), [](const std::string& s) { return upper_of(s); }});
  f.push_back({"uppercase_word", false, "Uppercase:", "uppercase under a close rewording", true,
               letters(3, 6), [](const std::string& s) { return upper_of(s); }});
  f.push_back({"upper_digits", false, "Upper:", "uppercase of letters mixed with digits (new inputs)",
               true, upper_digits_input, [](const std::string& s) { return upper_of(s); }});
  f.push_back({"dedup_digits", false, "Dedup:", "collapse repeats of letters and digits (new inputs)",
               true, dedup_digits_input, dedup_of});
  f.push_back({"reverse_upper", false, "Reverse upper:", "reverse, then uppercase (composition)",
               true, letters(3, 5), [](const std::string& s) { return upper_of(reverse_of(s)); }});
  return f;
}

}  // namespace

TaskItem TaskFamily::sample(ZooRng& rng) const {
  TaskItem item;
  item.input = make_input(rng);
  item.prompt = prompt_for(item.input);
  item.answer = solve(item.input);
  return item;
}

const std::vector<TaskFamily>& all_task_families() {
  static const std::vector<TaskFamily> families = make_families();
  return families;
}

const TaskFamily& task_family(const std::string& name) {
  for (const auto& f : all_task_families())
    if (f.name == name) return f;
  std::string known;
  for (const auto& f : all_task_families()) known += (known.empty() ? "" : ", ") + f.name;
  fail(ErrorKind::Usage, "unknown task family '{}' (known: {})", name, known);
}

std::vector<std::string> held_in_family_names() {
  std::vector<std::string> names;
  for (const auto& f : all_task_families())
    if (f.held_in) names.push_back(f.name);
  return names;
}

std::vector<std::string> held_out_family_names() {
  std::vector<std::string> names;
  for (const auto& f : all_task_families())
    if (!f.held_in) names.push_back(f.name);
  return names;
}

}  // namespace amalgam::zoo
