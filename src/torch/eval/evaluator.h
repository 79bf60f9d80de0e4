// Runs tasks (task.h) on a model held in memory: builds the log-likelihood and generation
// requests with the model's tokenizer, scores them (scorer.h, generate_greedy) and turns
// the numbers into metrics (metrics.h). What `amalgam eval` prints, and what the demo and
// the optimizer call on merges that were never written to disk.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "torch/eval/causal_lm.h"
#include "torch/eval/task.h"
#include "torch/tokenizer/tokenizer.h"

namespace amalgam {

struct LanguageModel {
  const ModelConfig& config;
  const WeightMap& weights;
  const Tokenizer& tokenizer;
};

struct EvalOptions {
  int64_t batch_size = 8;
  std::optional<int64_t> limit;  // first N documents of each task
  bool keep_samples = false;     // fill TaskResult::samples (for --log-samples)
  bool quiet = false;            // no progress bar
};

struct TaskResult {
  std::string name;
  TaskType type = TaskType::Generate;
  int64_t documents = 0;
  std::vector<std::pair<std::string, double>> metrics;  // in display order
  std::vector<nlohmann::json> samples;                 // one object per document
  double seconds = 0;
  double metric(const std::string& key) const;  // throws Error(Internal) if absent
};

TaskResult evaluate_task(const LanguageModel& lm, const TaskSpec& spec, const EvalOptions& options);

// Perplexity of raw text with the model's tokenizer (no special tokens): the ids are cut
// into consecutive non-overlapping windows of `context` tokens; each window scores its
// positions 2..len. tokens = scored tokens, nll = their summed negative log-likelihood.
struct TextPerplexity {
  int64_t tokens = 0, windows = 0;
  double nll = 0, seconds = 0;
  double ppl() const;
};
TextPerplexity evaluate_text(const ModelConfig& config, const WeightMap& weights,
                             const std::vector<int64_t>& ids, int64_t context, int64_t batch_size,
                             bool quiet);

// Tokenizes context + continuation as lm-eval does (trailing context spaces move to the
// continuation; the continuation's ids are the whole text's ids past the context's). An
// empty context becomes the BOS (else EOS) token. Exposed for tests.
std::pair<std::vector<int64_t>, std::vector<int64_t>> encode_pair(const Tokenizer& tokenizer,
                                                                  const ModelConfig& config,
                                                                  const std::string& context,
                                                                  const std::string& continuation);

std::string format_results_table(const std::vector<TaskResult>& results);
nlohmann::json results_to_json(const std::vector<TaskResult>& results);

}  // namespace amalgam
