// Exact match of a model on task items: greedy decoding through eval/'s batched
// generate_greedy until the newline that ends every zoo answer, compared with the
// answer. What the zoo and the demo score models with. Internal to zoo/ (torch).
#pragma once
#include <vector>

#include "torch/eval/causal_lm.h"
#include "torch/zoo/task_family.h"

namespace amalgam::zoo {

// Share of items whose generated text (up to the first newline) equals the answer.
double exact_match(const ModelConfig& config, const WeightMap& weights,
                   const std::vector<TaskItem>& items, int batch = 64);

}  // namespace amalgam::zoo
