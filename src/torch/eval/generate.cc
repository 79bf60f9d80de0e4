// Greedy decoding with a KV cache. Prompts of different lengths are left-padded into one
// batch (positions come from the mask, so padding does not shift them); each step feeds
// only the newest token. A finished row keeps being fed padding-free dummy tokens (its
// own last token) so the batch stays rectangular; its output is frozen.
#include "torch/eval/causal_lm.h"
#include "util/error.h"

namespace amalgam {

std::vector<std::vector<int64_t>> generate_greedy(const ModelConfig& config, const WeightMap& weights,
                                                  const std::vector<std::vector<int64_t>>& prompts,
                                                  int64_t max_new_tokens, std::optional<int64_t> eos_id,
                                                  const StopPredicate& should_stop) {
  size_t b = prompts.size();
  std::vector<std::vector<int64_t>> out(b);
  if (b == 0 || max_new_tokens <= 0) return out;
  int64_t longest = 0;
  for (const auto& p : prompts) {
    if (p.empty()) fail(ErrorKind::Input, "generate: empty prompt (no token to start from)");
    longest = std::max<int64_t>(longest, static_cast<int64_t>(p.size()));
  }
  int64_t pad = config.pad_token_id.value_or(eos_id.value_or(0));
  auto ids = torch::full({static_cast<int64_t>(b), longest}, pad, torch::kInt64);
  auto mask = torch::zeros({static_cast<int64_t>(b), longest}, torch::kInt64);
  for (size_t r = 0; r < b; ++r) {
    int64_t n = static_cast<int64_t>(prompts[r].size()), off = longest - n;
    auto src = torch::from_blob(const_cast<int64_t*>(prompts[r].data()), {n}, torch::kInt64);
    ids[r].narrow(0, off, n).copy_(src);
    mask[r].narrow(0, off, n).fill_(1);
  }
  torch::NoGradGuard no_grad;
  KVCache cache;
  std::vector<bool> done(b, false);
  size_t remaining = b;
  torch::Tensor step_ids = ids, step_mask = mask;
  for (int64_t step = 0; step < max_new_tokens && remaining > 0; ++step) {
    auto h = forward_hidden(config, weights, step_ids, step_mask, &cache);
    auto last = h.select(1, h.size(1) - 1);  // [B, hidden]
    auto logits = torch::matmul(last, output_embedding(config, weights).t()).to(torch::kFloat32);
    auto next = logits.argmax(-1).contiguous();
    const int64_t* nx = next.data_ptr<int64_t>();
    for (size_t r = 0; r < b; ++r) {
      if (done[r]) continue;
      bool stop = eos_id && nx[r] == *eos_id;
      if (!stop) {
        out[r].push_back(nx[r]);
        stop = should_stop && should_stop(r, out[r]);
      }
      if (stop) {
        done[r] = true;
        --remaining;
      }
    }
    step_ids = next.unsqueeze(1);
    step_mask = torch::ones({static_cast<int64_t>(b), 1}, torch::kInt64);
  }
  return out;
}

std::vector<std::vector<int64_t>> generate_greedy(const ModelConfig& config, const WeightMap& weights,
                                                  const std::vector<std::vector<int64_t>>& prompts,
                                                  int64_t max_new_tokens, std::optional<int64_t> eos_id) {
  return generate_greedy(config, weights, prompts, max_new_tokens, eos_id, StopPredicate());
}

}  // namespace amalgam
