// Task families: every answer is checked by an independent solver written here (dumb and
// obviously correct), splits are deterministic and disjoint, streams skip held-back
// items, pretraining text is deterministic and carries copy structure.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <unistd.h>
#include <sstream>

#include <nlohmann/json.hpp>

#include "torch/zoo/pretrain_text.h"
#include "torch/zoo/task_data.h"
#include "torch/zoo/task_family.h"

namespace amalgam::zoo {
namespace {

// Independent reference answers, from the prompt text alone.
std::string check(const std::string& family, const std::string& prompt) {
  const std::string body = prompt.substr(prompt.find(' ') + 1, prompt.size() - prompt.find(' ') - 2);
  auto after_colon = [](const std::string& p) {
    const size_t c = p.find(": ");
    return p.substr(c + 2, p.size() - c - 3);
  };
  const std::string in = after_colon(prompt);
  if (family == "reverse") {
    std::string out;
    for (size_t i = in.size(); i-- > 0;) out += in[i];
    return out;
  }
  if (family == "sort") {
    int counts[26] = {};
    for (char c : in) counts[c - 'a']++;
    std::string out;
    for (int i = 0; i < 26; ++i) out += std::string(counts[i], static_cast<char>('a' + i));
    return out;
  }
  if (family == "uppercase" || family == "capitals" || family == "uppercase_word" ||
      family == "upper_digits") {
    std::string out;
    for (char c : in) out += c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c;
    return out;
  }
  if (family == "add") {
    int a = 0, b = 0;
    EXPECT_EQ(std::sscanf(in.c_str(), "%d+%d", &a, &b), 2) << prompt;
    return std::to_string(a + b);
  }
  if (family == "count") {
    // "Count b: abcb", 4 letters over a-d
    const char target = prompt[6];
    EXPECT_EQ(in.size(), 4u) << prompt;
    int n = 0;
    for (char c : in) {
      EXPECT_TRUE(c >= 'a' && c <= 'd') << prompt;
      n += c == target;
    }
    return std::to_string(n);
  }
  if (family == "recall") {
    // "Recall: a3 b7 b" -> "b7"
    std::istringstream ss(in);
    std::vector<std::string> words;
    for (std::string w; ss >> w;) words.push_back(w);
    EXPECT_EQ(words.size(), 3u) << prompt;
    EXPECT_NE(words[0][0], words[1][0]) << prompt;
    for (size_t i = 0; i + 1 < words.size(); ++i)
      if (words[i][0] == words.back()[0]) return words[i];
    return "?";
  }
  if (family == "successor") {
    std::string out;
    for (char c : in) out += static_cast<char>('a' + (c - 'a' + 1) % 26);
    return out;
  }
  if (family == "dedup" || family == "dedup_digits") {
    std::string out = in;
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }
  if (family == "reverse_upper") {
    std::string out;
    for (size_t i = in.size(); i-- > 0;) out += static_cast<char>(in[i] - 32);
    return out;
  }
  ADD_FAILURE() << "no checker for " << family << " (" << body << ")";
  return "";
}

TEST(TaskFamilies, AtLeastEightHeldInAndThreeHeldOut) {
  EXPECT_GE(held_in_family_names().size(), 8u);
  EXPECT_GE(held_out_family_names().size(), 3u);
  // Held-in instructions differ; a held-out family may reuse one on new inputs, but then
  // its inputs must differ in kind (digits mixed in), so no held-in item is held out.
  std::set<std::string> instructions;
  for (const auto& f : all_task_families())
    if (f.held_in) EXPECT_TRUE(instructions.insert(f.instruction).second) << f.name;
  for (const auto& f : all_task_families()) {
    if (f.held_in || !instructions.count(f.instruction)) continue;
    ZooRng rng(5, f.name);
    int with_digit = 0;
    for (int i = 0; i < 200; ++i) {
      const std::string in = f.sample(rng).input;
      with_digit += std::any_of(in.begin(), in.end(), [](char c) { return std::isdigit(c); });
    }
    EXPECT_EQ(with_digit, 200) << f.name;
  }
}

TEST(TaskFamilies, AnswersMatchIndependentCheckers) {
  for (const auto& f : all_task_families()) {
    ZooRng rng(7, f.name);
    std::set<std::string> answers;
    for (int i = 0; i < 500; ++i) {
      const TaskItem item = f.sample(rng);
      ASSERT_EQ(item.prompt, f.instruction + " " + item.input + "\n");
      ASSERT_EQ(item.answer, check(f.name, item.prompt)) << f.name << ": " << item.prompt;
      ASSERT_FALSE(item.answer.empty()) << f.name;
      ASSERT_EQ(item.answer.find('\n'), std::string::npos);
      // Fits the tiny models' context with room for the answer.
      ASSERT_LE(item.prompt.size() + item.answer.size() + 1, 40u) << item.prompt;
      for (char c : item.prompt + item.answer) ASSERT_LT(static_cast<unsigned char>(c), 128);
      answers.insert(item.answer);
    }
    // count's answers are 0-4 (and 4 is rare: 0.4%).
    EXPECT_GT(answers.size(), f.name == "count" ? 3u : 5u) << f.name << " answers are not varied";
  }
}

TEST(TaskFamilies, CountAnswersAreNotAllZero) {
  const auto& f = task_family("count");
  ZooRng rng(3);
  std::map<std::string, int> hist;
  for (int i = 0; i < 1000; ++i) hist[f.sample(rng).answer]++;
  // Binomial(4, 1/4): 0 about 32%, 1 42%, 2 21%, 3 5%, 4 0.4%.
  EXPECT_LT(hist["0"], 400);
  EXPECT_GT(hist["2"], 100);
  EXPECT_GT(hist["3"], 10);
}

TEST(TaskData, SplitsAreDeterministicAndDisjoint) {
  const SplitSizes sizes{200, 50, 50};
  for (const auto& f : all_task_families()) {
    const auto a = make_splits(f, 11, sizes), b = make_splits(f, 11, sizes),
               c = make_splits(f, 12, sizes);
    ASSERT_EQ(a.test.size(), 50u);
    std::vector<std::string> pa, pb, pc;
    for (const auto& it : a.test) pa.push_back(it.prompt);
    for (const auto& it : b.test) pb.push_back(it.prompt);
    for (const auto& it : c.test) pc.push_back(it.prompt);
    EXPECT_EQ(pa, pb) << f.name;
    EXPECT_NE(pa, pc) << f.name;
    if (!f.disjoint_splits) continue;
    std::set<std::string> held(pa.begin(), pa.end());
    EXPECT_EQ(held.size(), 50u) << f.name << ": test prompts repeat";
    for (const auto& it : a.dev) EXPECT_TRUE(held.insert(it.prompt).second) << f.name;
    for (const auto& it : a.train) EXPECT_FALSE(held.count(it.prompt)) << f.name;
  }
}

TEST(TaskData, StreamIsDeterministicAndSkipsHeldBackItems) {
  const SplitSizes sizes{0, 50, 50};
  std::vector<std::pair<std::string, double>> mix = {{"reverse", 1}, {"add", 1}, {"count", 2}};
  TaskStream s1(mix, 5, 99, sizes), s2(mix, 5, 99, sizes), s3(mix, 5, 100, sizes);
  std::set<std::string> held;
  for (const char* f : {"reverse", "count"}) {
    const auto sp = make_splits(task_family(f), 5, sizes);
    for (const auto& it : sp.test) held.insert(it.prompt);
    for (const auto& it : sp.dev) held.insert(it.prompt);
  }
  std::map<std::string, int> per_family;
  int same_as_other_seed = 0;
  for (int i = 0; i < 3000; ++i) {
    const TaskItem a = s1.next(), b = s2.next(), c = s3.next();
    ASSERT_EQ(a.prompt, b.prompt);
    same_as_other_seed += a.prompt == c.prompt;
    EXPECT_FALSE(held.count(a.prompt)) << a.prompt;
    per_family[a.prompt.substr(0, a.prompt.find(' '))]++;
  }
  EXPECT_LT(same_as_other_seed, 300);
  // Mixture weights 1:1:2.
  EXPECT_NEAR(per_family["Count"] / 3000.0, 0.5, 0.05);
  EXPECT_NEAR(per_family["Reverse:"] / 3000.0, 0.25, 0.05);
}

TEST(TaskData, HeldOutFamiliesCannotBeTrained) {
  EXPECT_ANY_THROW(TaskStream({{"capitals", 1.0}}, 1, 1, SplitSizes{}));
}

TEST(TaskData, WritesEvalTaskFiles) {
  const auto dir = std::filesystem::temp_directory_path() / ("zoo-tasks-" + std::to_string(::getpid()));
  write_task_files(dir.string(), {"reverse", "upper_digits"}, 3, {20, 10, 10});
  for (const char* f : {"reverse", "upper_digits"}) {
    std::ifstream spec(dir / f / "task.json");
    const auto j = nlohmann::json::parse(spec);
    EXPECT_EQ(j["type"], "generate");
    EXPECT_EQ(j["prompt"], "{{prompt}}");
    EXPECT_EQ(j["target"], "{{answer}}");
    EXPECT_EQ(j["until"][0], "\n");
    std::ifstream test(dir / f / "test.jsonl");
    int n = 0;
    for (std::string line; std::getline(test, line); ++n) {
      const auto item = nlohmann::json::parse(line);
      EXPECT_EQ(item["answer"].get<std::string>(), check(f, item["prompt"].get<std::string>()));
    }
    EXPECT_EQ(n, 10);
  }
  std::filesystem::remove_all(dir);
}

TEST(PretrainText, DeterministicWithCopyStructure) {
  ZooRng a(1), b(1), c(2);
  const std::string ta = pretrain_text(a, 20000), tb = pretrain_text(b, 20000),
                    tc = pretrain_text(c, 20000);
  EXPECT_EQ(ta, tb);
  EXPECT_NE(ta, tc);
  ASSERT_EQ(ta.size(), 20000u);
  // Share of words (length >= 3) that occurred among the previous 12 words: random
  // letter strings almost never repeat by chance, so this measures the copy spans.
  std::istringstream ss(ta);
  std::vector<std::string> words;
  for (std::string w; ss >> w;) words.push_back(w);
  int repeats = 0, total = 0, capitalised = 0, numbers = 0;
  for (size_t i = 12; i < words.size(); ++i) {
    if (std::isupper(static_cast<unsigned char>(words[i][0]))) ++capitalised;
    if (std::isdigit(static_cast<unsigned char>(words[i][0]))) ++numbers;
    if (words[i].size() < 3) continue;
    ++total;
    for (size_t k = i - 12; k < i; ++k)
      if (words[k] == words[i]) { ++repeats; break; }
  }
  const double share = static_cast<double>(repeats) / total;
  EXPECT_GT(share, 0.2);
  EXPECT_LT(share, 0.7);
  EXPECT_GT(capitalised, 50);
  EXPECT_GT(numbers, 50);
}

}  // namespace
}  // namespace amalgam::zoo
