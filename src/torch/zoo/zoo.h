// The self-trained model zoo: presets (micro for tests, tiny for the demo, small for the
// study), the models each preset defines (a pretrained base, an instruction-tuned base,
// one expert per held-in family from each base, a pool of generalists), and the builder
// that trains what a command needs and caches each model on its own under
// ~/.cache/amalgam/zoo/<preset>-<hash>/<model> (hash of preset config + seed + code
// version). Models are plain Hugging Face Llama directories. No torch in this header.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace amalgam::zoo {

struct ZooPreset {
  std::string name;
  int64_t hidden = 128, layers = 4, heads = 4, intermediate = 344, context = 64;
  int64_t pretrain_seq = 40;
  std::vector<std::string> held_in, held_out;  // family names
  int batch = 32, warmup = 30;
  int pretrain_steps = 600, instruct_steps = 500;
  int expert_steps_base = 400, expert_steps_instruct = 300, generalist_steps = 300;
  double lr_pretrain = 3e-3, lr_instruct = 2e-3, lr_expert_base = 3e-3, lr_expert_instruct = 1e-3;
  // Share of each expert-from-instruct batch drawn from the instruct base's own uniform
  // mixture of the held-in families (replay), the rest from the expert's family.
  double expert_replay = 0;
  // Generalists train at 0.5x to 3x of this.
  double lr_generalist = 1e-3;
  int generalists = 6;
  int split_train = 500, split_dev = 50, split_test = 50;
  nlohmann::json to_json() const;
};

// "micro", "tiny", "small"; throws Error(Usage) otherwise.
ZooPreset zoo_preset(const std::string& name);

// One model of a preset: where it starts, what it trains on, how.
struct ZooModelSpec {
  std::string name;    // "base", "instruct", "expert-instruct-reverse", "generalist-3", ...
  std::string role;    // base | instruct | expert | generalist
  std::string parent;  // "" = random initialisation
  std::string family;  // experts: their family
  std::vector<std::pair<std::string, double>> mixture;  // empty = generic text
  int steps = 0;
  double lr = 0;
  int batch = 32;
  nlohmann::json to_json() const;
};

struct ZooBuildRecord {  // what building one model did (for --json and reports)
  std::string name, dir;
  bool cached = false;
  double seconds = 0, first_loss = 0, final_loss = 0;
};

class Zoo {
 public:
  // root: explicit directory, else $AMALGAM_ZOO_DIR/<preset>-<hash>, else
  // $XDG_CACHE_HOME or ~/.cache + amalgam/zoo/<preset>-<hash>.
  Zoo(ZooPreset preset, uint64_t seed, std::optional<std::string> root = std::nullopt,
      int threads = 1, bool quiet = false);

  const ZooPreset& preset() const { return preset_; }
  uint64_t seed() const { return seed_; }
  const std::string& root() const { return root_; }
  std::string hash() const;  // 12 hex digits

  const std::vector<ZooModelSpec>& models() const { return specs_; }
  const ZooModelSpec& spec(const std::string& name) const;  // throws Error(Usage)
  std::string dir_of(const std::string& name) const { return root_ + "/" + name; }
  bool is_built(const std::string& name) const;
  // Names of the experts fine-tuned from `base_name` ("base" or "instruct"), in
  // held-in family order.
  std::vector<std::string> experts_of(const std::string& base_name) const;

  // Trains `name` (and, first, any parent not yet cached). Returns its directory.
  std::string ensure(const std::string& name);
  // Writes the task files (idempotent). Returns root/tasks.
  std::string ensure_tasks();
  // Build records of the models ensure() touched, in order.
  const std::vector<ZooBuildRecord>& records() const { return records_; }

 private:
  ZooPreset preset_;
  uint64_t seed_;
  std::string root_;
  int threads_;
  bool quiet_;
  std::vector<ZooModelSpec> specs_;
  std::vector<ZooBuildRecord> records_;
};

using FamilyScores = std::map<std::string, double>;  // family -> exact match

// Test items of every family of the preset (held-in, then held-out), fixed by the seed.
// Exact match of the model in `dir` on them (greedy decoding, `threads` torch threads).
FamilyScores score_model_dir(const std::string& dir, const ZooPreset& preset, uint64_t seed);

// Threads for training and scoring the zoo's small models: torch's own intra-op pool at 1
// and OpenBLAS's pool at `threads`. With both pools at 2 on 2 cores, the idle OpenMP
// workers spin while OpenBLAS's threads need the cores: a tiny-model training step took
// 150-1250 ms instead of 50-65 ms (docs/zoo.md, "Time"). The matrix products are nearly
// all of a step's time, so OpenBLAS's threads are the ones worth having.
void configure_zoo_threads(int threads);

// Bumped whenever training code or data generation changes what a model would be, so
// stale caches are never reused.
constexpr const char* kZooCodeVersion = "zoo-4";

}  // namespace amalgam::zoo
