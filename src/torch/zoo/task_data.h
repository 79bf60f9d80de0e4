// Train/dev/test splits of the task families and the training streams drawn from them.
// Dev and test sets are fixed by (seed, family); training items are drawn on the fly from
// a seeded stream that skips every dev/test prompt (where the family's input space
// allows), so exact match on test measures more than recall of training items.
// Also writes the splits as task files for `amalgam eval` (JSONL + a JSON spec).
#pragma once
#include <cstdint>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "torch/zoo/rng.h"
#include "torch/zoo/task_family.h"

namespace amalgam::zoo {

struct SplitSizes {
  int train = 500;  // items written to train.jsonl (training itself streams)
  int dev = 50;
  int test = 50;
};

struct FamilySplits {
  std::vector<TaskItem> train, dev, test;
};

// Deterministic for (family, seed). Dev and test prompts are distinct from each other
// and from train when family.disjoint_splits.
FamilySplits make_splits(const TaskFamily& family, uint64_t seed, const SplitSizes& sizes);

// Infinite stream of training items from a weighted mixture of families.
class TaskStream {
 public:
  // weights: (family name, relative weight > 0). `seed` keys the held-back dev/test sets,
  // `stream_seed` the draws (different models draw different batches).
  TaskStream(const std::vector<std::pair<std::string, double>>& weights, uint64_t seed,
             uint64_t stream_seed, const SplitSizes& sizes);
  TaskItem next();

 private:
  std::vector<const TaskFamily*> families_;
  std::vector<double> cumulative_;
  std::unordered_set<std::string> held_back_;  // dev+test prompts of disjoint families
  ZooRng rng_;
};

// Writes DIR/<family>/{train,dev,test}.jsonl (one {"prompt","answer"} object a line)
// and DIR/<family>/task.json, the spec eval/task.h reads ({"type": "generate",
// "prompt": "{{prompt}}", "target": "{{answer}}", "until": ["\n"], ...}). Returns the
// family directories.
std::vector<std::string> write_task_files(const std::string& dir,
                                          const std::vector<std::string>& families,
                                          uint64_t seed, const SplitSizes& sizes);

}  // namespace amalgam::zoo
