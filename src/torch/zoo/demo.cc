// The demo pipeline. Merges go through the same path as `amalgam merge` (recipe text
// parsed, planned, executed to a directory), so what the demo shows is what a user gets
// from the recipes it leaves behind.
#include "torch/zoo/demo.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>

#include <fmt/format.h>

#include "exec/executor.h"
#include "io/model_dir.h"
#include "plan/plan.h"
#include "recipe/recipe.h"
#include "torch/eval/causal_lm.h"
#include "torch/zoo/exact_match.h"
#include "torch/zoo/task_data.h"
#include "torch/zoo/trainer.h"
#include "torch/zoo/zoo.h"
#include "util/error.h"
#include "util/progress.h"

namespace amalgam::zoo {
namespace fs = std::filesystem;
namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Recipe text for merging `experts` (model dirs) onto `base` with `method`.
std::string recipe_text(const std::string& method, const std::string& base,
                        const std::vector<std::string>& experts) {
  const size_t n = experts.size();
  std::string models;
  for (const auto& e : experts) {
    models += fmt::format("  - model: {}\n", e);
    if (method == "linear") {
      models += "    parameters:\n      weight: 1.0\n";
    } else if (method == "task_arithmetic") {
      // Summing n task vectors at full weight overshoots (ZOO.md: lambda 0.5 over 8
      // experts collapsed most families); 2/n keeps the sum's scale near one vector's
      // and still differs from linear (= 1/n).
      models += fmt::format("    parameters:\n      weight: {}\n", std::min(1.0, 2.0 / n));
    } else {
      models += "    parameters:\n      weight: 1.0\n      density: 0.5\n";
    }
  }
  std::string text = fmt::format("# amalgam demo: {} of {} experts\nmerge_method: {}\n", method,
                                 n, method);
  if (method != "linear") text += fmt::format("base_model: {}\n", base);
  text += "models:\n" + models;
  if (method == "ties" || method == "dare_ties") text += "parameters:\n  normalize: true\n";
  text += "dtype: float32\n";
  return text;
}

double mean(const std::vector<double>& v) {
  if (v.empty()) return 0;
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

// The models the demo needs, and nothing else: the pretrained base, the instruct base
// and the experts fine-tuned from it.
std::vector<std::string> needed_models(const Zoo& zoo) {
  std::vector<std::string> needed = {"base", "instruct"};
  const auto experts = zoo.experts_of("instruct");
  needed.insert(needed.end(), experts.begin(), experts.end());
  return needed;
}

// Merges of the first 2, the first 4 and all experts (no duplicates for small presets).
std::vector<size_t> merge_counts(size_t experts) {
  std::vector<size_t> counts;
  for (size_t n : {size_t{2}, size_t{4}, experts})
    if (n <= experts && std::find(counts.begin(), counts.end(), n) == counts.end())
      counts.push_back(n);
  return counts;
}

const std::vector<std::string>& demo_methods() {
  static const std::vector<std::string> methods = {"linear", "task_arithmetic", "ties", "dare_ties"};
  return methods;
}

}  // namespace

nlohmann::json plan_demo(const DemoOptions& opt) {
  const Zoo zoo(zoo_preset(opt.preset), opt.seed, opt.zoo_root, opt.threads, true);
  nlohmann::json models = nlohmann::json::array();
  for (const auto& m : needed_models(zoo)) {
    auto j = zoo.spec(m).to_json();
    j["dir"] = zoo.dir_of(m);
    j["cached"] = zoo.is_built(m);
    models.push_back(j);
  }
  const auto experts = zoo.experts_of("instruct");
  const fs::path out(opt.out_dir);
  nlohmann::json merges = nlohmann::json::array();
  for (size_t n : merge_counts(experts.size()))
    for (const auto& method : demo_methods()) {
      const std::string name = fmt::format("{}-n{}", method, n);
      std::vector<std::string> families(zoo.preset().held_in.begin(),
                                        zoo.preset().held_in.begin() + static_cast<long>(n));
      merges.push_back({{"name", name}, {"method", method}, {"experts", families},
                        {"recipe", (out / "recipes" / (name + ".yaml")).string()},
                        {"model_dir", (out / "merges" / name).string()}});
    }
  return {{"preset", opt.preset}, {"seed", opt.seed}, {"zoo_root", zoo.root()},
          {"models", models}, {"merges", merges}, {"held_in", zoo.preset().held_in},
          {"held_out", zoo.preset().held_out}, {"test_items", zoo.preset().split_test},
          {"report", (out / "report.html").string()},
          {"results", (out / "results.json").string()}};
}

DemoResult run_demo(const DemoOptions& opt) {
  const auto start = std::chrono::steady_clock::now();
  DemoResult r;
  r.preset = opt.preset;
  r.seed = opt.seed;
  Zoo zoo(zoo_preset(opt.preset), opt.seed, opt.zoo_root, opt.threads, opt.quiet);
  r.zoo_root = zoo.root();
  r.held_in = zoo.preset().held_in;
  r.held_out = zoo.preset().held_out;
  const auto& p = zoo.preset();
  r.parameters = p.layers * (4 * p.hidden * p.hidden + 3 * p.hidden * p.intermediate + 2 * p.hidden) +
                 2 * 128 * p.hidden + p.hidden;

  // 1. The models the demo needs, and nothing else.
  const std::vector<std::string> needed = needed_models(zoo);
  const auto experts = zoo.experts_of("instruct");
  for (const auto& m : needed) zoo.ensure(m);
  zoo.ensure_tasks();
  // ensure() records a parent again each time a child asks for it: count names once.
  std::set<std::string> seen;
  for (const auto& rec : zoo.records()) {
    if (!rec.cached) {
      ++r.models_trained;
      r.train_seconds += rec.seconds;
    }
    seen.insert(rec.name);
  }
  r.models_cached = static_cast<int>(seen.size()) - r.models_trained;
  configure_zoo_threads(opt.threads);

  // 2. Reference scores: bases and experts on every family.
  auto eval_start = std::chrono::steady_clock::now();
  {
    Progress bar("demo: scoring zoo models", needed.size(), "models", opt.quiet);
    for (const auto& m : needed) {
      r.model_scores[m] = score_model_dir(zoo.dir_of(m), p, opt.seed);
      bar.advance(1, m);
    }
    bar.finish();
  }
  r.eval_seconds += seconds_since(eval_start);

  // 3. Merges: 2, 4 and all experts (first n held-in families), four methods.
  const std::vector<size_t> counts = merge_counts(experts.size());
  const std::vector<std::string>& methods = demo_methods();
  const fs::path out(opt.out_dir);
  fs::create_directories(out / "recipes");
  fs::create_directories(out / "merges");
  Progress bar("demo: merging and scoring", counts.size() * methods.size(), "merges", opt.quiet);
  for (size_t n : counts) {
    for (const auto& method : methods) {
      MergeOutcome m;
      m.method = method;
      m.name = fmt::format("{}-n{}", method, n);
      std::vector<std::string> dirs;
      for (size_t i = 0; i < n; ++i) {
        m.experts.push_back(r.held_in[i]);
        dirs.push_back(fs::absolute(zoo.dir_of(experts[i])).string());
      }
      m.recipe_path = (out / "recipes" / (m.name + ".yaml")).string();
      m.model_dir = (out / "merges" / m.name).string();
      const std::string text =
          recipe_text(method, fs::absolute(zoo.dir_of("instruct")).string(), dirs);
      std::ofstream(m.recipe_path, std::ios::binary | std::ios::trunc) << text;

      const auto merge_start = std::chrono::steady_clock::now();
      const Recipe recipe = parse_recipe_text(text, m.recipe_path);
      ModelSet models;
      PlanOptions plan_options;
      plan_options.seed = opt.seed;
      const MergePlan plan = make_plan(recipe, models, plan_options);
      ExecOptions exec;
      exec.threads = opt.threads;
      exec.force = true;  // each run merges afresh: the demo shows a real merge
      execute_plan(plan, models, recipe, m.model_dir, exec);
      m.merge_seconds = seconds_since(merge_start);
      r.merge_seconds += m.merge_seconds;

      eval_start = std::chrono::steady_clock::now();
      m.scores = score_model_dir(m.model_dir, p, opt.seed);
      r.eval_seconds += seconds_since(eval_start);

      std::vector<double> in_norm, in_raw, out_norm, out_raw;
      for (const auto& f : m.experts) {
        const double expert = r.model_scores["expert-instruct-" + f][f];
        in_raw.push_back(m.scores[f]);
        if (expert > 0) in_norm.push_back(m.scores[f] / expert);
      }
      for (const auto& f : r.held_out) {
        const double base = r.model_scores["instruct"][f];
        out_raw.push_back(m.scores[f]);
        if (base > 0) out_norm.push_back(m.scores[f] / base);
      }
      m.held_in_normalized = mean(in_norm);
      m.held_out_normalized = mean(out_norm);
      m.held_in_raw = mean(in_raw);
      m.held_out_raw = mean(out_raw);
      r.merges.push_back(std::move(m));
      bar.advance(1, r.merges.back().name);
    }
  }
  bar.finish();
  r.report_path = (out / "report.html").string();
  r.total_seconds = seconds_since(start);
  write_demo_report(r, r.report_path);
  std::ofstream(out / "results.json", std::ios::binary | std::ios::trunc) << r.to_json().dump(2) << "\n";
  return r;
}

nlohmann::json DemoResult::to_json() const {
  nlohmann::json merges_json = nlohmann::json::array();
  for (const auto& m : merges)
    merges_json.push_back({{"name", m.name}, {"method", m.method}, {"experts", m.experts},
                           {"recipe", m.recipe_path}, {"model_dir", m.model_dir},
                           {"scores", m.scores}, {"held_in_normalized", m.held_in_normalized},
                           {"held_out_normalized", m.held_out_normalized},
                           {"held_in_raw", m.held_in_raw}, {"held_out_raw", m.held_out_raw},
                           {"merge_seconds", m.merge_seconds}});
  return {{"preset", preset}, {"seed", seed}, {"zoo_root", zoo_root}, {"report", report_path},
          {"held_in", held_in}, {"held_out", held_out}, {"parameters", parameters},
          {"model_scores", model_scores}, {"merges", merges_json},
          {"models_trained", models_trained}, {"models_cached", models_cached},
          {"train_seconds", train_seconds}, {"merge_seconds", merge_seconds},
          {"eval_seconds", eval_seconds}, {"total_seconds", total_seconds}};
}

std::string DemoResult::table_text() const {
  // The references the normalization uses, as raw mean exact match on held-in families.
  std::vector<double> base_in, instruct_in, expert_in;
  for (const auto& f : held_in) {
    base_in.push_back(model_scores.at("base").at(f));
    instruct_in.push_back(model_scores.at("instruct").at(f));
    expert_in.push_back(model_scores.at("expert-instruct-" + f).at(f));
  }
  std::string s = fmt::format(
      "held-in mean EM: pretrained base {:.2f}, instruct base {:.2f}, experts (own family) {:.2f}\n",
      mean(base_in), mean(instruct_in), mean(expert_in));
  s += fmt::format("{:<18} {:>3}  {:>14} {:>15}  {:>11} {:>12}\n", "method", "n",
                              "held-in/expert", "held-out/base", "held-in EM", "held-out EM");
  for (const auto& m : merges)
    s += fmt::format("{:<18} {:>3}  {:>14.2f} {:>15.2f}  {:>11.2f} {:>12.2f}\n", m.method,
                     m.experts.size(), m.held_in_normalized, m.held_out_normalized, m.held_in_raw,
                     m.held_out_raw);
  return s;
}

}  // namespace amalgam::zoo
