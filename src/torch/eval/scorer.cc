// Batched log-likelihood scoring; see scorer.h.
#include "torch/eval/scorer.h"

#include <algorithm>
#include <numeric>

#include "util/error.h"
#include "util/progress.h"

namespace amalgam {

int64_t model_context_length(const ModelConfig& config) { return std::max<int64_t>(2, config.max_position_embeddings); }

std::vector<LoglikelihoodResult> score_loglikelihood(const ModelConfig& config, const WeightMap& weights,
                                                     const std::vector<LoglikelihoodRequest>& requests,
                                                     int64_t batch_size, Progress* progress) {
  const int64_t max_len = model_context_length(config);
  struct Prepared {
    std::vector<int64_t> input;  // context + continuation minus the last token, cut to max_len
    std::vector<int64_t> targets;
  };
  std::vector<Prepared> prep(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& r = requests[i];
    if (r.context.empty()) fail(ErrorKind::Internal, "loglikelihood request without context token");
    if (static_cast<int64_t>(r.continuation.size()) > max_len)
      fail(ErrorKind::Input, "a continuation of {} tokens exceeds the model's context of {}", r.continuation.size(),
           max_len);
    std::vector<int64_t> full(r.context);
    full.insert(full.end(), r.continuation.begin(), r.continuation.end());
    if (static_cast<int64_t>(full.size()) > max_len + 1) full.erase(full.begin(), full.end() - (max_len + 1));
    prep[i].targets = r.continuation;
    prep[i].input.assign(full.begin(), full.end() - 1);
  }
  // Longest first: batches hold similar lengths (little padding), and a too-large batch
  // fails at once rather than at the end.
  std::vector<size_t> order(requests.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return prep[a].input.size() > prep[b].input.size(); });

  torch::NoGradGuard no_grad;
  const torch::Tensor& head = output_embedding(config, weights);
  std::vector<LoglikelihoodResult> out(requests.size());
  batch_size = std::max<int64_t>(1, batch_size);
  for (size_t start = 0; start < order.size(); start += batch_size) {
    size_t end = std::min(order.size(), start + static_cast<size_t>(batch_size));
    int64_t b = static_cast<int64_t>(end - start), t = static_cast<int64_t>(prep[order[start]].input.size());
    auto ids = torch::zeros({b, t}, torch::kInt64);
    auto mask = torch::zeros({b, t}, torch::kInt64);
    std::vector<int64_t> rows, targets;  // flattened [b*t] positions that predict a target
    int64_t* idp = ids.data_ptr<int64_t>();
    int64_t* mp = mask.data_ptr<int64_t>();
    for (int64_t r = 0; r < b; ++r) {
      const Prepared& p = prep[order[start + r]];
      int64_t n = static_cast<int64_t>(p.input.size()), k = static_cast<int64_t>(p.targets.size());
      std::copy(p.input.begin(), p.input.end(), idp + r * t);
      std::fill(mp + r * t, mp + r * t + n, 1);
      for (int64_t j = 0; j < k; ++j) {
        rows.push_back(r * t + n - k + j);
        targets.push_back(p.targets[j]);
      }
    }
    auto hidden = forward_hidden(config, weights, ids, mask).reshape({b * t, -1});
    auto picked = hidden.index_select(0, torch::tensor(rows, torch::kInt64));
    auto logits = torch::matmul(picked, head.t()).to(torch::kFloat32);
    auto logp = torch::log_softmax(logits, -1);
    auto tgt = torch::tensor(targets, torch::kInt64);
    auto lp = logp.gather(1, tgt.unsqueeze(1)).squeeze(1).contiguous();
    auto greedy = (logits.argmax(-1) == tgt).contiguous();
    const float* lpp = lp.data_ptr<float>();
    const bool* gp = greedy.data_ptr<bool>();
    size_t at = 0;
    for (int64_t r = 0; r < b; ++r) {
      auto& res = out[order[start + r]];
      res.is_greedy = true;
      for (size_t j = 0; j < prep[order[start + r]].targets.size(); ++j, ++at) {
        res.log_likelihood += lpp[at];
        res.is_greedy = res.is_greedy && gp[at];
      }
    }
    if (progress) progress->advance(b);
  }
  return out;
}

}  // namespace amalgam
