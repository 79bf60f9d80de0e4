// `amalgam demo` as a library call: builds or loads a zoo preset (the pretrained base,
// the instruction-tuned base and its experts), merges 2, 4 and all experts with linear,
// task_arithmetic, ties and dare_ties through the real merge engine (recipe -> plan ->
// streaming executor, written under OUT/merges), scores every model by exact match on
// held-in and held-out families, normalizes as in "What Matters for Model Merging at
// Scale?" (merged / expert on held-in, merged / instruct base on held-out) and writes
// OUT/report.html, OUT/results.json and OUT/recipes/*.yaml. No torch in this header.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "torch/zoo/zoo.h"

namespace amalgam::zoo {

struct DemoOptions {
  std::string out_dir = "demo-out";
  std::string preset = "tiny";
  uint64_t seed = 0;
  int threads = 1;
  bool quiet = false;
  std::optional<std::string> zoo_root;  // default: the zoo cache
};

struct MergeOutcome {
  std::string name;    // "ties-n4"
  std::string method;  // "ties"
  std::vector<std::string> experts;  // families of the merged experts
  std::string recipe_path, model_dir;
  FamilyScores scores;
  double held_in_normalized = 0;   // mean over merged families of merged / expert
  double held_out_normalized = 0;  // mean over held-out families of merged / instruct base
  double held_in_raw = 0, held_out_raw = 0;
  double merge_seconds = 0;
};

struct DemoResult {
  std::string preset, zoo_root, report_path;
  uint64_t seed = 0;
  std::vector<std::string> held_in, held_out;
  std::map<std::string, FamilyScores> model_scores;  // base, instruct, expert-instruct-*
  std::vector<MergeOutcome> merges;
  double train_seconds = 0, merge_seconds = 0, eval_seconds = 0, total_seconds = 0;
  int models_trained = 0, models_cached = 0;
  int64_t parameters = 0;
  nlohmann::json to_json() const;
  std::string table_text() const;  // the normalized table printed by the command
};

DemoResult run_demo(const DemoOptions& options);

// What run_demo would do, without doing any of it (nothing is written): the zoo
// directory, each model it needs and whether it is cached, the merges (method, experts,
// recipe and output paths), the families scored, the report's path. JSON; the command
// prints it as text or, with --json, as is.
nlohmann::json plan_demo(const DemoOptions& options);

// Writes the HTML report of a demo run to `path`.
void write_demo_report(const DemoResult& result, const std::string& path);

}  // namespace amalgam::zoo
