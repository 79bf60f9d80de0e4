// Task specs, JSONL reading, templates, few-shot selection and the metric functions, on
// hand-computed cases.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <set>

#include "torch/eval/metrics.h"
#include "torch/eval/task.h"
#include "torch/eval/test_model.h"
#include "util/error.h"

namespace amalgam {
namespace {

using testing_model::write_text;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(TaskSpec, YamlAndJsonSpecs) {
  auto dir = testing_model::scratch_dir("spec");
  write_text(dir + "/mc.yaml",
             "type: multiple_choice\ndata: d.jsonl\nprompt: \"Q: {{q}}\\nA:\"\ntarget: \"{{label}}\"\n"
             "choices: options\nnum_fewshot: 2\nfewshot_seed: 7\n");
  auto s = TaskSpec::load(dir + "/mc.yaml");
  EXPECT_EQ(s.name, "mc");
  EXPECT_EQ(s.type, TaskType::MultipleChoice);
  EXPECT_EQ(s.data_path, dir + "/d.jsonl");
  EXPECT_EQ(s.prompt, "Q: {{q}}\nA:");
  EXPECT_EQ(s.choices_field, "options");
  EXPECT_EQ(s.num_fewshot, 2);
  EXPECT_EQ(s.fewshot_seed, 7u);
  EXPECT_EQ(s.until, std::vector<std::string>{"\n\n"});
  write_text(dir + "/g.json",
             R"({"name": "rev", "type": "generate", "data": "t.jsonl", "prompt": "{{p}}", "target": "{{a}}",
                 "until": ["\n", "."], "max_new_tokens": 5, "target_delimiter": ""})");
  auto g = TaskSpec::load(dir + "/g.json");
  EXPECT_EQ(g.name, "rev");
  EXPECT_EQ(g.until, (std::vector<std::string>{"\n", "."}));
  EXPECT_EQ(g.max_new_tokens, 5);
  EXPECT_EQ(g.target_delimiter, "");

  write_text(dir + "/bad.yaml", "type: generate\ndata: x.jsonl\nprompt: \"{{a}}\"\ntarget: \"{{b}}\"\nstop: [x]\n");
  EXPECT_NE(error_of([&] { TaskSpec::load(dir + "/bad.yaml"); }).find("unknown key 'stop'"), std::string::npos);
  write_text(dir + "/bad2.yaml", "type: classify\ndata: x.jsonl\n");
  EXPECT_NE(error_of([&] { TaskSpec::load(dir + "/bad2.yaml"); }).find("bad2.yaml"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(TaskSpec, MalformedJsonlNamesFileAndLine) {
  auto dir = testing_model::scratch_dir("jsonl");
  write_text(dir + "/d.jsonl", "{\"a\": 1}\n\n{\"a\": 2}\n{\"a\": 3,}\n");
  std::string msg = error_of([&] { read_jsonl(dir + "/d.jsonl"); });
  EXPECT_NE(msg.find(dir + "/d.jsonl:4"), std::string::npos) << msg;
  write_text(dir + "/e.jsonl", "{\"a\": 1}\n[1, 2]\n");
  msg = error_of([&] { read_jsonl(dir + "/e.jsonl"); });
  EXPECT_NE(msg.find("e.jsonl:2"), std::string::npos) << msg;
  write_text(dir + "/ok.jsonl", "{\"a\": 1}\n\n  \n{\"a\": 2}\n");
  auto docs = read_jsonl(dir + "/ok.jsonl");
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[1].line, 4u);
  std::filesystem::remove_all(dir);
}

TEST(TaskSpec, TemplatesSubstituteFields) {
  TaskDoc doc{nlohmann::json{{"q", "2+2"}, {"n", 4}, {"list", {1, 2}}}, 3};
  EXPECT_EQ(render_template("Q: {{q}} = {{ n }} {{list}}.", doc, "x"), "Q: 2+2 = 4 [1,2].");
  EXPECT_EQ(render_template("no fields", doc, "x"), "no fields");
  std::string msg = error_of([&] { render_template("{{missing}}", doc, "spec.yaml: d.jsonl:3"); });
  EXPECT_NE(msg.find("d.jsonl:3"), std::string::npos);
  EXPECT_NE(msg.find("missing"), std::string::npos);
}

TEST(TaskSpec, FewshotIsDeterministicAndExcludesTheDocument) {
  auto a = choose_fewshot(10, 3, 42, 5, 5);
  EXPECT_EQ(a, choose_fewshot(10, 3, 42, 5, 5));
  EXPECT_EQ(a.size(), 3u);
  for (size_t i : a) EXPECT_NE(i, 5u);
  EXPECT_NE(a, choose_fewshot(10, 3, 43, 5, 5));  // the seed matters
  std::set<size_t> distinct(a.begin(), a.end());
  EXPECT_EQ(distinct.size(), 3u);
  EXPECT_EQ(choose_fewshot(3, 5, 1, 0, 0).size(), 2u);  // capped at the pool size

  TaskSpec s;
  s.type = TaskType::MultipleChoice;
  s.spec_path = s.data_path = "t";
  s.prompt = "{{q}}?";
  s.target = "{{gold}}";
  s.choices_field = "c";
  s.num_fewshot = 1;
  s.fewshot_delimiter = " | ";
  std::vector<TaskDoc> pool = {{nlohmann::json{{"q", "a"}, {"c", {"x", "y"}}, {"gold", 1}}, 1},
                               {nlohmann::json{{"q", "b"}, {"c", {"x", "y"}}, {"gold", "x"}}, 2}};
  TaskRenderer r(s, &pool);
  auto doc0 = r.render(pool[0], 0, true);  // its only possible example is doc 1
  EXPECT_EQ(doc0.context, "b? x | a?");
  EXPECT_EQ(doc0.gold, 1);
  EXPECT_EQ(doc0.choices, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(r.render(pool[1], 1, true).context, "a? y | b?");
}

TEST(Metrics, AccAndAccNormAsLmEval) {
  // ll / bytes: -2/1 = -2 vs -4/4 = -1: acc picks choice 0, acc_norm choice 1.
  auto o = score_choices({-2.0, -4.0}, {"x", "yyyy"}, 1);
  EXPECT_EQ(o.pred, 0);
  EXPECT_EQ(o.pred_norm, 1);
  EXPECT_EQ(o.acc, 0.0);
  EXPECT_EQ(o.acc_norm, 1.0);
  // Byte length, not characters: "é" is 2 bytes, so -3/2 = -1.5 beats -2/1.
  auto u = score_choices({-2.0, -3.0}, {"e", "\xc3\xa9"}, 0);
  EXPECT_EQ(u.pred_norm, 1);
  EXPECT_EQ(u.acc, 1.0);
  EXPECT_EQ(u.acc_norm, 0.0);
  // Ties go to the first choice (numpy argmax).
  EXPECT_EQ(score_choices({-1.0, -1.0}, {"a", "b"}, 1).pred, 0);
}

TEST(Metrics, PerplexitiesAndExactMatch) {
  PerplexityTotals t{-6.0, 3, 2, 12};
  EXPECT_NEAR(t.token_perplexity(), std::exp(2.0), 1e-12);
  EXPECT_NEAR(t.word_perplexity(), std::exp(3.0), 1e-12);
  EXPECT_NEAR(t.byte_perplexity(), std::exp(0.5), 1e-12);
  EXPECT_NEAR(t.bits_per_byte(), 0.5 / std::log(2.0), 1e-12);
  EXPECT_EQ(count_words("the cat  sat"), 3);
  EXPECT_EQ(count_words(" a b\n"), 4);  // Python: ['', 'a', 'b', '']
  EXPECT_EQ(cut_at_stop("abc\ndef.", {".", "\n"}), "abc");
  EXPECT_EQ(cut_at_stop("abc", {"\n"}), "abc");
  EXPECT_EQ(exact_match("  cba \n", "cba"), 1.0);
  EXPECT_EQ(exact_match("cb", "cba"), 0.0);
}

}  // namespace
}  // namespace amalgam
