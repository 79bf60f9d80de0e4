#include "torch/zoo/task_data.h"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace amalgam::zoo {
namespace {

// Draws `n` items, distinct prompts when `distinct` and not in `exclude`. Gives up on
// distinctness after many misses (small input spaces) rather than looping forever.
std::vector<TaskItem> draw(const TaskFamily& f, ZooRng& rng, int n, bool distinct,
                           std::unordered_set<std::string>& seen) {
  std::vector<TaskItem> items;
  int misses = 0;
  while (static_cast<int>(items.size()) < n) {
    TaskItem item = f.sample(rng);
    if (distinct && seen.count(item.prompt) && misses++ < 1000 * n) continue;
    seen.insert(item.prompt);
    items.push_back(std::move(item));
  }
  return items;
}

}  // namespace

FamilySplits make_splits(const TaskFamily& family, uint64_t seed, const SplitSizes& sizes) {
  FamilySplits s;
  std::unordered_set<std::string> seen;
  ZooRng test_rng(seed, "test/" + family.name);
  s.test = draw(family, test_rng, sizes.test, family.disjoint_splits, seen);
  ZooRng dev_rng(seed, "dev/" + family.name);
  s.dev = draw(family, dev_rng, sizes.dev, family.disjoint_splits, seen);
  ZooRng train_rng(seed, "train/" + family.name);
  if (family.disjoint_splits) {
    std::unordered_set<std::string> held = seen;
    while (static_cast<int>(s.train.size()) < sizes.train) {
      TaskItem item = family.sample(train_rng);
      if (!held.count(item.prompt)) s.train.push_back(std::move(item));
    }
  } else {
    for (int i = 0; i < sizes.train; ++i) s.train.push_back(family.sample(train_rng));
  }
  return s;
}

TaskStream::TaskStream(const std::vector<std::pair<std::string, double>>& weights, uint64_t seed,
                       uint64_t stream_seed, const SplitSizes& sizes)
    : rng_(stream_seed) {
  double total = 0;
  for (const auto& [name, w] : weights) {
    const TaskFamily& f = task_family(name);
    if (!f.held_in) fail(ErrorKind::Internal, "held-out family '{}' in a training mixture", name);
    if (w <= 0) continue;
    families_.push_back(&f);
    total += w;
    cumulative_.push_back(total);
    if (f.disjoint_splits) {
      FamilySplits s = make_splits(f, seed, {0, sizes.dev, sizes.test});
      for (const auto& it : s.dev) held_back_.insert(it.prompt);
      for (const auto& it : s.test) held_back_.insert(it.prompt);
    }
  }
  if (families_.empty()) fail(ErrorKind::Internal, "empty training mixture");
  for (double& c : cumulative_) c /= total;
}

TaskItem TaskStream::next() {
  for (;;) {
    const double r = rng_.uniform();
    size_t i = 0;
    while (i + 1 < cumulative_.size() && r >= cumulative_[i]) ++i;
    TaskItem item = families_[i]->sample(rng_);
    if (!held_back_.count(item.prompt)) return item;
  }
}

std::vector<std::string> write_task_files(const std::string& dir,
                                          const std::vector<std::string>& families,
                                          uint64_t seed, const SplitSizes& sizes) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  for (const auto& name : families) {
    const TaskFamily& f = task_family(name);
    const FamilySplits s = make_splits(f, seed, sizes);
    const fs::path fdir = fs::path(dir) / name;
    std::error_code ec;
    fs::create_directories(fdir, ec);
    if (ec) fail(ErrorKind::Io, "{}: cannot create directory: {}", fdir.string(), ec.message());
    auto write_jsonl = [&](const std::string& file, const std::vector<TaskItem>& items) {
      const fs::path p = fdir / file;
      std::ofstream os(p, std::ios::binary | std::ios::trunc);
      for (const auto& it : items)
        os << nlohmann::json{{"prompt", it.prompt}, {"answer", it.answer}}.dump() << '\n';
      if (!os) fail(ErrorKind::Io, "{}: write failed", p.string());
    };
    write_jsonl("train.jsonl", s.train);
    write_jsonl("dev.jsonl", s.dev);
    write_jsonl("test.jsonl", s.test);
    // The format of eval/task.h (TaskSpec): the prompt already ends with the newline
    // that separates it from the answer, and the answer ends at the next newline.
    nlohmann::json spec = {{"name", name},
                           {"type", "generate"},
                           {"data", "test.jsonl"},
                           {"fewshot_data", "dev.jsonl"},
                           {"num_fewshot", 0},
                           {"prompt", "{{prompt}}"},
                           {"target", "{{answer}}"},
                           {"target_delimiter", ""},
                           {"fewshot_delimiter", "\n"},
                           {"until", {"\n"}},
                           {"max_new_tokens", 12},
                           {"description", std::string(f.held_in ? "held-in" : "held-out") +
                                               " zoo family: " + f.description}};
    std::ofstream os(fdir / "task.json", std::ios::binary | std::ios::trunc);
    os << spec.dump(2) << '\n';
    if (!os) fail(ErrorKind::Io, "{}: write failed", (fdir / "task.json").string());
    out.push_back(fdir.string());
  }
  return out;
}

}  // namespace amalgam::zoo
