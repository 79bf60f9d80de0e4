#include "torch/zoo/exact_match.h"

#include <algorithm>

#include "io/model_dir.h"
#include "torch/zoo/model_files.h"
#include "torch/zoo/task_data.h"
#include "torch/zoo/zoo.h"

namespace amalgam::zoo {

double exact_match(const ModelConfig& config, const WeightMap& weights,
                   const std::vector<TaskItem>& items, int batch) {
  if (items.empty()) return 0.0;
  torch::NoGradGuard no_grad;
  size_t max_answer = 0;
  for (const auto& it : items) max_answer = std::max(max_answer, it.answer.size());
  const int64_t max_new = static_cast<int64_t>(max_answer) + 2;  // room to be wrong
  size_t correct = 0;
  for (size_t begin = 0; begin < items.size(); begin += static_cast<size_t>(batch)) {
    const size_t end = std::min(items.size(), begin + static_cast<size_t>(batch));
    std::vector<std::vector<int64_t>> prompts;
    for (size_t i = begin; i < end; ++i) prompts.push_back(encode_bytes(items[i].prompt));
    const auto out = generate_greedy(config, weights, prompts, max_new, kNewlineId);
    for (size_t i = begin; i < end; ++i) {
      std::string text = decode_bytes(out[i - begin]);
      const auto nl = text.find('\n');
      if (nl != std::string::npos) text.resize(nl);
      if (text == items[i].answer) ++correct;
    }
  }
  return static_cast<double>(correct) / static_cast<double>(items.size());
}

}  // namespace amalgam::zoo

namespace amalgam::zoo {

FamilyScores score_model_dir(const std::string& dir, const ZooPreset& preset, uint64_t seed) {
  auto model = ModelDir::open(dir);
  const ModelConfig config = ModelConfig::from_json(model->config(), dir);
  const WeightMap weights = load_weights(*model, torch::kFloat32);
  const SplitSizes sizes{0, preset.split_dev, preset.split_test};
  FamilyScores scores;
  for (const auto* names : {&preset.held_in, &preset.held_out})
    for (const auto& f : *names)
      scores[f] = exact_match(config, weights, make_splits(task_family(f), seed, sizes).test);
  return scores;
}

}  // namespace amalgam::zoo
