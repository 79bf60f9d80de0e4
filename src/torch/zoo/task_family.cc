// The families themselves. Inputs are short (the tiny models have a 64-token context) and
// the harder skills come in the easier variants ZOO.md asks for: 1-digit addition and
// key-value recall over 2 pairs.
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

// "x: abxcxd": how many times x occurs after the colon.
std::string count_input(ZooRng& rng) {
  const char target = rng.letter();
  std::string s(static_cast<size_t>(rng.range(4, 7)), 'a');
  for (char& c : s) {
    if (rng.chance(0.3)) {
      c = target;
    } else {
      do c = rng.letter(); while (c == target);
    }
  }
  return std::string{target, ':', ' '} + s;
}
std::string count_solve(const std::string& in) {
  return std::to_string(std::count(in.begin() + 3, in.end(), in[0]));
}

// "b: a=3 b=7": the value of the queried key among 2 pairs with distinct keys.
std::string recall_input(ZooRng& rng) {
  const char k1 = rng.letter();
  char k2;
  do k2 = rng.letter(); while (k2 == k1);
  const char query = rng.chance(0.5) ? k1 : k2;
  return std::string{query, ':', ' ', k1, '=', rng.digit(), ' ', k2, '=', rng.digit()};
}
std::string recall_solve(const std::string& in) {
  for (size_t i = 3; i + 2 < in.size(); i += 4)
    if (in[i] == in[0]) return std::string(1, in[i + 2]);
  return "";
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
  f.push_back({"count", true, "Count", "count a letter in 4-7 letters", true, count_input,
               count_solve});
  f.push_back({"recall", true, "Recall", "value of a key among 2 key=digit pairs", true,
               recall_input, recall_solve});
  f.push_back({"successor", true, "Next:", "replace each of 3-5 letters by the next one", true,
               letters(3, 5), [](const std::string& s) { return successor_of(s); }});
  f.push_back({"dedup", true, "Dedup:", "collapse repeated letters", true, dedup_input, dedup_of});
  // Held out: never in any training mixture.
  f.push_back({"reverse_upper", false, "Reverse upper:", "reverse, then uppercase (composition)",
               true, letters(3, 5), [](const std::string& s) { return upper_of(reverse_of(s)); }});
  f.push_back({"sort_dedup", false, "Sort unique:", "sort, then collapse repeats (composition)",
               true, dedup_input, [](const std::string& s) { return dedup_of(sorted_of(s)); }});
  f.push_back({"backwards", false, "Backwards:", "reverse under a new instruction wording", true,
               letters(3, 6), reverse_of});
  f.push_back({"capitals", false, "Capitals:", "uppercase under a new instruction wording", true,
               letters(3, 6), [](const std::string& s) { return upper_of(s); }});
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
