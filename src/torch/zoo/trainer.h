// The zoo's trainer: next-token training of a WeightMap through eval/'s functional
// forward (the same code that evaluates every model), AdamW with betas (0.9, 0.98) and
// weight decay 0.01, linear warmup then cosine decay, gradient clipping at norm 1.
// Pretraining scores every token; task training scores only the answer tokens (and the
// newline that ends them). Deterministic for a seed: batches come from ZooRng streams
// built on one thread, torch's thread count is fixed by the caller. Internal to zoo/.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "torch/eval/causal_lm.h"
#include "torch/zoo/task_data.h"

namespace amalgam::zoo {

struct TrainOptions {
  int steps = 300;
  int batch = 32;
  int warmup = 30;
  double lr = 1e-3;
  double weight_decay = 0.01;
  double clip = 1.0;
  int64_t seq_len = 40;  // pretraining row length; task rows are as long as their item
  uint64_t stream_seed = 0;
  // Empty mixture: pretraining on generic text. Otherwise task items of these families.
  std::vector<std::pair<std::string, double>> mixture;
  uint64_t split_seed = 0;  // keys the dev/test sets the task stream holds back
  SplitSizes sizes;
  std::string label = "train";  // progress bar label
  bool quiet = false;
};

struct TrainResult {
  double first_loss = 0, final_loss = 0;  // mean of the first / last 10% of steps
  double seconds = 0;
};

// Trains `weights` in place (they are made leaf tensors requiring grad while training
// and detached afterwards).
TrainResult train(const ModelConfig& config, WeightMap& weights, const TrainOptions& options);

// Learning rate at `step` (0-based): linear warmup to `lr` over `warmup` steps, then
// cosine to 0 at `steps`.
double lr_at(int step, int steps, int warmup, double lr);

}  // namespace amalgam::zoo
