// The model-facing half of evaluation: log-likelihoods of continuations given contexts
// (multiple choice, perplexity) computed in length-sorted, right-padded batches, with the
// vocabulary projection applied only at the scored positions. Token ids in, numbers out;
// the tokenizer and the metrics live elsewhere (evaluator.h, metrics.h).
#pragma once
#include <cstdint>
#include <vector>

#include "torch/eval/causal_lm.h"

namespace amalgam {

class Progress;

struct LoglikelihoodRequest {
  std::vector<int64_t> context;       // at least one token
  std::vector<int64_t> continuation;  // the scored tokens
};

struct LoglikelihoodResult {
  double log_likelihood = 0;  // sum over the continuation's tokens (nats)
  bool is_greedy = false;     // every continuation token is the argmax
};

// Sequences longer than the model's context are cut from the left (as lm-eval does); a
// continuation longer than the context is an error. `progress` advances per request.
std::vector<LoglikelihoodResult> score_loglikelihood(const ModelConfig& config, const WeightMap& weights,
                                                     const std::vector<LoglikelihoodRequest>& requests,
                                                     int64_t batch_size, Progress* progress = nullptr);

// Largest sequence the model is run on (max_position_embeddings).
int64_t model_context_length(const ModelConfig& config);

}  // namespace amalgam
