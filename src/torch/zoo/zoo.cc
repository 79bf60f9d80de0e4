// Presets, the model list of a preset, and cached training of one model at a time.
#include "torch/zoo/zoo.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "io/model_dir.h"
#include "torch/zoo/model_files.h"
#include "torch/zoo/trainer.h"
#include "util/error.h"
#include "util/progress.h"

namespace amalgam::zoo {
namespace fs = std::filesystem;

nlohmann::json ZooPreset::to_json() const {
  return {{"name", name}, {"hidden", hidden}, {"layers", layers}, {"heads", heads},
          {"intermediate", intermediate}, {"context", context}, {"pretrain_seq", pretrain_seq},
          {"held_in", held_in}, {"held_out", held_out}, {"batch", batch}, {"warmup", warmup},
          {"pretrain_steps", pretrain_steps}, {"instruct_steps", instruct_steps},
          {"expert_steps_base", expert_steps_base},
          {"expert_steps_instruct", expert_steps_instruct},
          {"generalist_steps", generalist_steps}, {"lr_pretrain", lr_pretrain},
          {"lr_instruct", lr_instruct}, {"lr_expert_base", lr_expert_base},
          {"lr_expert_instruct", lr_expert_instruct}, {"expert_replay", expert_replay},
          {"lr_generalist", lr_generalist}, {"generalists", generalists},
          {"split_train", split_train}, {"split_dev", split_dev}, {"split_test", split_test}};
}

ZooPreset zoo_preset(const std::string& name) {
  ZooPreset p;
  p.name = name;
  p.held_in = held_in_family_names();
  p.held_out = held_out_family_names();
  if (name == "micro") {
    // Only exercises the pipeline: seconds, not quality.
    p.hidden = 32; p.layers = 2; p.heads = 2; p.intermediate = 64; p.context = 32;
    p.pretrain_seq = 24;
    p.held_in = {"reverse", "uppercase", "successor"};
    p.held_out = {"capitals"};
    p.batch = 8; p.warmup = 5;
    p.pretrain_steps = 40; p.instruct_steps = 30;
    p.expert_steps_base = 20; p.expert_steps_instruct = 20; p.generalist_steps = 20;
    p.generalists = 2;
    p.split_train = 20; p.split_dev = 10; p.split_test = 10;
  } else if (name == "tiny") {
    // ZOO.md's measured model (0.82 M parameters). Pretraining 1500 steps instead of 600
    // (final loss 2.25 instead of 2.74): the base the tuned schedule was measured on.
    // Experts from the instruct base replay its uniform 8-family mixture in a quarter of
    // every batch, at lr 1e-3, 400 steps: without replay their task vectors erased the
    // other families and the uniform average of the 8 landed on the instruct base (0.45 vs
    // 0.45 held-in, seed 0) whatever the lr (5e-4, 1e-3) or steps; with it 0.54, experts
    // 0.86-1.00 on their own family and ~0.45 on the others. Half the batch replayed lifts
    // the average further (0.58) but leaves recall and sort experts below 0.8.
    // Experts from the pretrained base train at lr 1e-3 for 500 steps: at 3e-3 count and
    // recall stayed at 0.76 / 0.60 after 400 steps and fell (0.58 / 0.52) after 600.
    // Measured in docs/zoo.md.
    p.pretrain_steps = 1500;
    p.lr_expert_instruct = 1e-3;
    p.expert_steps_instruct = 400;
    p.expert_replay = 0.25;
    p.lr_expert_base = 1e-3;
    p.expert_steps_base = 500;
    p.lr_generalist = 5e-4;
  } else if (name == "small") {
    p.hidden = 256; p.layers = 6; p.heads = 8; p.intermediate = 688;
    p.pretrain_steps = 1500; p.instruct_steps = 1000;
    p.expert_steps_base = 600; p.expert_steps_instruct = 400; p.generalist_steps = 500;
    p.lr_pretrain = 1.5e-3; p.lr_instruct = 1e-3; p.lr_expert_base = 1.5e-3;
    p.lr_expert_instruct = 5e-4; p.lr_generalist = 5e-4;
  } else {
    fail(ErrorKind::Usage, "unknown zoo preset '{}' (micro, tiny, small)", name);
  }
  return p;
}

nlohmann::json ZooModelSpec::to_json() const {
  nlohmann::json mix = nlohmann::json::array();
  for (const auto& [f, w] : mixture) mix.push_back({f, w});
  return {{"name", name}, {"role", role}, {"parent", parent}, {"family", family},
          {"mixture", mix}, {"steps", steps}, {"lr", lr}, {"batch", batch}};
}

namespace {

// Generalists: the same families in different proportions and with different learning
// rates, so that each trades some tasks for others (the pool of "If You Can't Use Them,
// Recycle Them").
std::vector<ZooModelSpec> generalist_specs(const ZooPreset& p) {
  const auto& f = p.held_in;
  const size_t n = f.size();
  std::vector<ZooModelSpec> out;
  for (int g = 0; g < p.generalists; ++g) {
    ZooModelSpec s;
    s.name = "generalist-" + std::to_string(g + 1);
    s.role = "generalist";
    s.parent = "instruct";
    s.steps = p.generalist_steps;
    s.batch = p.batch;
    s.lr = p.lr_generalist * 2;
    for (size_t i = 0; i < n; ++i) {
      double w = 1.0;
      switch (g % 6) {
        case 0: break;                                       // uniform
        case 1: w = i < n / 2 ? 3.0 : 0.3; break;            // first half heavy
        case 2: w = i < n / 2 ? 0.3 : 3.0; break;            // second half heavy
        case 3: w = 1.0; s.lr = p.lr_generalist * 0.5; break;  // gentle, uniform
        case 4: w = i % 2 == 0 ? 2.0 : 0.2; break;           // even families
        case 5: w = i % 2 == 1 ? 2.0 : 0.2; s.lr = p.lr_generalist * 3; break;
      }
      s.mixture.push_back({f[i], w});
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::string default_cache_parent() {
  if (const char* d = std::getenv("AMALGAM_ZOO_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/amalgam/zoo";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/amalgam/zoo";
  return ".amalgam-zoo";
}

}  // namespace

Zoo::Zoo(ZooPreset preset, uint64_t seed, std::optional<std::string> root, int threads, bool quiet)
    : preset_(std::move(preset)), seed_(seed), threads_(threads), quiet_(quiet) {
  root_ = root ? *root : default_cache_parent() + "/" + preset_.name + "-" + hash();
  const auto& p = preset_;
  std::vector<std::pair<std::string, double>> uniform;
  for (const auto& f : p.held_in) uniform.push_back({f, 1.0});
  specs_.push_back({"base", "base", "", "", {}, p.pretrain_steps, p.lr_pretrain, p.batch});
  specs_.push_back({"instruct", "instruct", "base", "", uniform, p.instruct_steps, p.lr_instruct,
                    p.batch});
  for (const char* parent : {"instruct", "base"}) {
    const bool from_instruct = std::string(parent) == "instruct";
    for (const auto& f : p.held_in) {
      // Experts from the instruct base replay a share of its uniform mixture: the own
      // family gets (1 - r) + r/n of the items, every other family r/n.
      std::vector<std::pair<std::string, double>> mixture = {{f, 1.0}};
      if (from_instruct && p.expert_replay > 0) {
        mixture.clear();
        const double share = p.expert_replay / static_cast<double>(p.held_in.size());
        for (const auto& g : p.held_in)
          mixture.push_back({g, g == f ? 1.0 - p.expert_replay + share : share});
      }
      specs_.push_back({std::string("expert-") + parent + "-" + f, "expert", parent, f,
                        std::move(mixture),
                        from_instruct ? p.expert_steps_instruct : p.expert_steps_base,
                        from_instruct ? p.lr_expert_instruct : p.lr_expert_base, p.batch});
    }
  }
  for (auto& g : generalist_specs(p)) specs_.push_back(std::move(g));
}

std::string Zoo::hash() const {
  const std::string key = preset_.to_json().dump() + "|" + std::to_string(seed_) + "|" + kZooCodeVersion;
  return fmt::format("{:012x}", ZooRng::hash(key) & 0xFFFFFFFFFFFFULL);
}

const ZooModelSpec& Zoo::spec(const std::string& name) const {
  for (const auto& s : specs_)
    if (s.name == name) return s;
  fail(ErrorKind::Usage, "zoo preset '{}' has no model '{}'", preset_.name, name);
}

bool Zoo::is_built(const std::string& name) const {
  return fs::exists(dir_of(name) + "/zoo_model.json") && fs::exists(dir_of(name) + "/config.json");
}

std::vector<std::string> Zoo::experts_of(const std::string& base_name) const {
  std::vector<std::string> out;
  for (const auto& s : specs_)
    if (s.role == "expert" && s.parent == base_name) out.push_back(s.name);
  return out;
}

std::string Zoo::ensure(const std::string& name) {
  const ZooModelSpec& s = spec(name);
  const std::string dir = dir_of(name);
  if (is_built(name)) {
    records_.push_back({name, dir, true, 0, 0, 0});
    return dir;
  }
  if (!s.parent.empty()) ensure(s.parent);
  configure_zoo_threads(threads_);

  const ModelShape shape{preset_.hidden, preset_.layers, preset_.heads, preset_.intermediate,
                         preset_.context};
  const ModelConfig config = model_config(shape);
  const uint64_t model_seed = seed_ ^ ZooRng::hash("model/" + name);
  torch::manual_seed(model_seed);
  WeightMap weights;
  if (s.parent.empty()) {
    weights = init_weights(shape);
  } else {
    auto parent = ModelDir::open(dir_of(s.parent));
    weights = load_weights(*parent, torch::kFloat32);
  }
  TrainOptions opt;
  opt.steps = s.steps;
  opt.batch = s.batch;
  opt.warmup = std::min(preset_.warmup, std::max(1, s.steps / 4));
  opt.lr = s.lr;
  opt.seq_len = s.mixture.empty() ? preset_.pretrain_seq : preset_.context - 1;
  opt.stream_seed = model_seed;
  opt.mixture = s.mixture;
  opt.split_seed = seed_;
  opt.sizes = {preset_.split_train, preset_.split_dev, preset_.split_test};
  opt.label = "zoo " + name;
  opt.quiet = quiet_;
  const TrainResult r = train(config, weights, opt);

  // Train into a temporary directory and rename: a killed build never leaves a model
  // that looks complete.
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) fail(ErrorKind::Io, "{}: cannot create directory: {}", root_, ec.message());
  const std::string tmp = root_ + "/.tmp-" + name + "-" + std::to_string(::getpid());
  fs::remove_all(tmp, ec);
  nlohmann::json record = {{"zoo_code_version", kZooCodeVersion}, {"preset", preset_.to_json()},
                           {"seed", seed_}, {"spec", s.to_json()}, {"seconds", r.seconds},
                           {"first_loss", r.first_loss}, {"final_loss", r.final_loss},
                           {"threads", threads_}};
  write_model_dir(tmp, shape, weights, {{"zoo_model.json", record.dump(2) + "\n"}});
  fs::remove_all(dir, ec);
  fs::rename(tmp, dir, ec);
  if (ec) fail(ErrorKind::Io, "{}: cannot move trained model into place: {}", dir, ec.message());
  records_.push_back({name, dir, false, r.seconds, r.first_loss, r.final_loss});
  return dir;
}

std::string Zoo::ensure_tasks() {
  const std::string dir = root_ + "/tasks";
  if (fs::exists(dir + "/.complete")) return dir;
  std::vector<std::string> families = preset_.held_in;
  families.insert(families.end(), preset_.held_out.begin(), preset_.held_out.end());
  const std::string tmp = root_ + "/.tmp-tasks-" + std::to_string(::getpid());
  std::error_code ec;
  fs::remove_all(tmp, ec);
  write_task_files(tmp, families, seed_,
                   {preset_.split_train, preset_.split_dev, preset_.split_test});
  std::ofstream(tmp + "/.complete") << kZooCodeVersion << "\n";
  fs::remove_all(dir, ec);
  fs::rename(tmp, dir, ec);
  if (ec) fail(ErrorKind::Io, "{}: cannot move task files into place: {}", dir, ec.message());
  return dir;
}

}  // namespace amalgam::zoo
