#include "torch/zoo/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

#include <dlfcn.h>

#include "torch/zoo/model_files.h"
#include "torch/zoo/pretrain_text.h"
#include "torch/zoo/zoo.h"
#include "util/error.h"
#include "util/progress.h"

namespace amalgam::zoo {
namespace {

struct Batch {
  torch::Tensor input, mask, target, loss_mask;
};

Batch pretrain_batch(ZooRng& rng, int batch, int64_t seq_len) {
  std::vector<int64_t> ids;
  ids.reserve(static_cast<size_t>(batch * (seq_len + 1)));
  for (int b = 0; b < batch; ++b) {
    const auto row = encode_bytes(pretrain_text(rng, static_cast<size_t>(seq_len + 1)));
    ids.insert(ids.end(), row.begin(), row.end());
  }
  auto all = torch::tensor(ids, torch::kInt64).view({batch, seq_len + 1});
  Batch out;
  out.input = all.slice(1, 0, seq_len).contiguous();
  out.target = all.slice(1, 1, seq_len + 1).contiguous();
  out.mask = torch::ones({batch, seq_len}, torch::kInt64);
  out.loss_mask = torch::ones({batch, seq_len}, torch::kBool);
  return out;
}

// Rows = prompt + answer + "\n", right-padded; loss on the positions that predict the
// answer and its newline.
Batch task_batch(TaskStream& stream, int batch, int64_t max_len) {
  std::vector<std::vector<int64_t>> rows;
  std::vector<size_t> prompt_lens;
  int64_t len = 0;
  for (int b = 0; b < batch; ++b) {
    const TaskItem item = stream.next();
    auto row = encode_bytes(item.prompt + item.answer + "\n");
    if (static_cast<int64_t>(row.size()) > max_len + 1) row.resize(static_cast<size_t>(max_len + 1));
    prompt_lens.push_back(item.prompt.size());
    len = std::max<int64_t>(len, static_cast<int64_t>(row.size()) - 1);
    rows.push_back(std::move(row));
  }
  auto input = torch::zeros({batch, len}, torch::kInt64);
  auto target = torch::zeros({batch, len}, torch::kInt64);
  auto mask = torch::zeros({batch, len}, torch::kInt64);
  auto loss_mask = torch::zeros({batch, len}, torch::kBool);
  auto in_a = input.accessor<int64_t, 2>();
  auto tg_a = target.accessor<int64_t, 2>();
  auto m_a = mask.accessor<int64_t, 2>();
  auto lm_a = loss_mask.accessor<bool, 2>();
  for (int b = 0; b < batch; ++b) {
    const auto& row = rows[static_cast<size_t>(b)];
    for (size_t t = 0; t + 1 < row.size(); ++t) {
      in_a[b][static_cast<int64_t>(t)] = row[t];
      tg_a[b][static_cast<int64_t>(t)] = row[t + 1];
      m_a[b][static_cast<int64_t>(t)] = 1;
      // Position t predicts token t+1: an answer token when t+1 >= prompt length.
      lm_a[b][static_cast<int64_t>(t)] = t + 1 >= prompt_lens[static_cast<size_t>(b)];
    }
  }
  return {input, mask, target, loss_mask};
}

}  // namespace

void configure_zoo_threads(int threads) {
  configure_torch_threads(threads);  // BLAS check, allocator settings, OpenBLAS pool
  torch::set_num_threads(1);
  using SetThreads = void (*)(int);
  if (auto fn = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    fn(std::max(1, threads));
}

double lr_at(int step, int steps, int warmup, double lr) {
  if (step < warmup) return lr * (step + 1) / warmup;
  const double span = std::max(1, steps - warmup);
  const double progress = std::min(1.0, (step - warmup) / span);
  return lr * 0.5 * (1.0 + std::cos(M_PI * progress));
}

TrainResult train(const ModelConfig& config, WeightMap& weights, const TrainOptions& opt) {
  const auto start = std::chrono::steady_clock::now();
  // A fixed parameter order (sorted names) keeps the optimizer's state layout, and so
  // the result, independent of the hash map's iteration order.
  std::map<std::string, torch::Tensor*> ordered;
  for (auto& [name, t] : weights) ordered[name] = &t;
  std::vector<torch::Tensor> params;
  for (auto& [name, t] : ordered) {
    *t = t->detach().to(torch::kFloat32).clone().set_requires_grad(true);
    params.push_back(*t);
  }
  torch::optim::AdamW optimizer(params, torch::optim::AdamWOptions(opt.lr)
                                            .betas({0.9, 0.98})
                                            .weight_decay(opt.weight_decay));
  ZooRng text_rng(opt.stream_seed, "pretrain");
  std::unique_ptr<TaskStream> stream;
  if (!opt.mixture.empty())
    stream = std::make_unique<TaskStream>(opt.mixture, opt.split_seed, opt.stream_seed, opt.sizes);

  const int tail = std::max(1, opt.steps / 10);
  double first_sum = 0, last_sum = 0;
  Progress progress(opt.label, static_cast<uint64_t>(opt.steps), "steps", opt.quiet);
  for (int step = 0; step < opt.steps; ++step) {
    const Batch b = stream ? task_batch(*stream, opt.batch, opt.seq_len)
                           : pretrain_batch(text_rng, opt.batch, opt.seq_len);
    const double lr = lr_at(step, opt.steps, opt.warmup, opt.lr);
    for (auto& group : optimizer.param_groups())
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    optimizer.zero_grad();
    const auto logits = forward(config, weights, b.input, b.mask);
    const auto sel = b.loss_mask.reshape({-1});
    const auto loss = torch::nn::functional::cross_entropy(
        logits.reshape({-1, logits.size(-1)}).index({sel}), b.target.reshape({-1}).index({sel}));
    loss.backward();
    torch::nn::utils::clip_grad_norm_(params, opt.clip);
    optimizer.step();
    const double l = loss.item<double>();
    if (!std::isfinite(l)) fail(ErrorKind::Internal, "{}: training diverged at step {}", opt.label, step);
    if (step < tail) first_sum += l;
    if (step >= opt.steps - tail) last_sum += l;
    progress.advance(1, fmt::format("loss {:.3f}", l));
  }
  progress.finish();
  for (auto& [name, t] : weights) t = t.detach();
  TrainResult r;
  r.first_loss = first_sum / tail;
  r.final_loss = last_sum / tail;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace amalgam::zoo
