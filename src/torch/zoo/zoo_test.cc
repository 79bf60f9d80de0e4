// The micro preset end to end: every model trains, is written as a Hugging Face
// directory that eval/ loads and the tokenizer reads, training is deterministic for a
// seed, the cache is reused, and the trainer's loss goes down.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "io/model_dir.h"
#include "torch/eval/causal_lm.h"
#include "torch/tokenizer/tokenizer.h"
#include "torch/zoo/model_files.h"
#include "torch/zoo/trainer.h"
#include "torch/zoo/zoo.h"

namespace amalgam::zoo {
namespace {
namespace fs = std::filesystem;

std::string temp_dir(const std::string& tag) {
  const auto d = fs::temp_directory_path() / ("amalgam-zoo-" + tag + "-" + std::to_string(::getpid()));
  fs::remove_all(d);
  return d.string();
}

std::string read_file(const std::string& path) {
  std::ifstream is(path, std::ios::binary);
  std::stringstream ss;
  ss << is.rdbuf();
  return ss.str();
}

TEST(ZooTrainer, LearningRateSchedule) {
  EXPECT_DOUBLE_EQ(lr_at(0, 100, 10, 1.0), 0.1);
  EXPECT_DOUBLE_EQ(lr_at(9, 100, 10, 1.0), 1.0);
  EXPECT_DOUBLE_EQ(lr_at(10, 100, 10, 1.0), 1.0);
  EXPECT_NEAR(lr_at(55, 100, 10, 1.0), 0.5, 1e-12);
  EXPECT_LT(lr_at(99, 100, 10, 1.0), 0.01);
}

TEST(ZooTrainer, TaskLossGoesDown) {
  configure_torch_threads(1);
  const ModelShape shape{32, 2, 2, 64, 32};
  torch::manual_seed(1);
  WeightMap w = init_weights(shape);
  TrainOptions o;
  o.steps = 60;
  o.batch = 16;
  o.warmup = 5;
  o.lr = 3e-3;
  o.seq_len = 31;
  o.mixture = {{"uppercase", 1.0}};
  o.sizes = {0, 10, 10};
  o.quiet = true;
  const TrainResult r = train(model_config(shape), w, o);
  EXPECT_LT(r.final_loss, r.first_loss * 0.7) << r.first_loss << " -> " << r.final_loss;
  for (const auto& [name, t] : w) EXPECT_FALSE(t.requires_grad()) << name;
}

TEST(ZooMicro, BuildsLoadableDeterministicCachedModels) {
  const auto start = std::chrono::steady_clock::now();
  const std::string root = temp_dir("micro");
  Zoo zoo(zoo_preset("micro"), 3, root, 1, true);
  ASSERT_GE(zoo.models().size(), 10u);
  for (const auto& s : zoo.models()) zoo.ensure(s.name);
  const std::string tasks = zoo.ensure_tasks();
  EXPECT_TRUE(fs::exists(tasks + "/reverse/test.jsonl"));
  EXPECT_TRUE(fs::exists(tasks + "/capitals/task.json"));

  for (const auto& s : zoo.models()) {
    const std::string dir = zoo.dir_of(s.name);
    auto model = ModelDir::open(dir);
    EXPECT_EQ(model->config()["architectures"][0], "LlamaForCausalLM");
    EXPECT_TRUE(fs::exists(dir + "/generation_config.json"));
    EXPECT_TRUE(fs::exists(dir + "/tokenizer_config.json"));
    const ModelConfig config = ModelConfig::from_json(model->config(), dir);
    const WeightMap w = load_weights(*model, torch::kFloat32);
    EXPECT_EQ(w.size(), 2u + 2u * 9u + 1u) << s.name;
    const auto logits = forward(config, w, torch::tensor({{82, 101, 118}}, torch::kInt64),
                                torch::ones({1, 3}, torch::kInt64));
    EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{1, 3, 128}));
    EXPECT_TRUE(torch::isfinite(logits).all().item<bool>()) << s.name;
  }
  // Children differ from their parent (they trained) and share its tensor names.
  {
    auto a = ModelDir::open(zoo.dir_of("instruct"));
    auto b = ModelDir::open(zoo.dir_of("expert-instruct-reverse"));
    EXPECT_EQ(a->tensor_names(), b->tensor_names());
    const auto wa = load_weights(*a, torch::kFloat32), wb = load_weights(*b, torch::kFloat32);
    EXPECT_FALSE(torch::equal(wa.at("model.layers.0.mlp.up_proj.weight"),
                              wb.at("model.layers.0.mlp.up_proj.weight")));
  }

  // The tokenizer reads the zoo's tokenizer.json: one token per byte, id = byte.
  auto tok = Tokenizer::from_dir(zoo.dir_of("base"));
  EXPECT_EQ(tok->vocab_size(), 128u);
  const std::string text = "Reverse: abc\nCBA 12+3=x";
  const auto ids = tok->encode(text, false);
  ASSERT_EQ(ids.size(), text.size());
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(ids[i], static_cast<unsigned char>(text[i]));
  EXPECT_EQ(tok->decode(ids, true), text);

  // Cached: a second zoo over the same root trains nothing.
  Zoo again(zoo_preset("micro"), 3, root, 1, true);
  again.ensure("expert-instruct-uppercase");
  ASSERT_EQ(again.records().size(), 1u);
  EXPECT_TRUE(again.records()[0].cached);

  // Deterministic: the same seed in another root gives the same bytes; another seed not.
  const std::string root2 = temp_dir("micro2");
  Zoo same(zoo_preset("micro"), 3, root2, 1, true);
  same.ensure("instruct");
  EXPECT_EQ(read_file(root + "/base/model.safetensors"), read_file(root2 + "/base/model.safetensors"));
  EXPECT_EQ(read_file(root + "/instruct/model.safetensors"),
            read_file(root2 + "/instruct/model.safetensors"));
  const std::string root3 = temp_dir("micro3");
  Zoo other(zoo_preset("micro"), 4, root3, 1, true);
  EXPECT_NE(other.hash(), zoo.hash());
  other.ensure("base");
  EXPECT_NE(read_file(root + "/base/model.safetensors"), read_file(root3 + "/base/model.safetensors"));

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 60.0);
  for (const auto& r : {root, root2, root3}) fs::remove_all(r);
}

TEST(ZooMicro, CommandLineDryRunListsTheModels) {
  const std::string root = temp_dir("cli");
  const std::string cmd = std::string(AMALGAM_BINARY) + " zoo build --preset micro --seed 5 --out " +
                          root + " --dry-run --json > " + root + ".json";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const auto j = nlohmann::json::parse(read_file(root + ".json"));
  EXPECT_EQ(j["root"], root);
  EXPECT_GE(j["models"].size(), 10u);
  EXPECT_EQ(j["models"][0]["name"], "base");
  EXPECT_FALSE(j["models"][0]["cached"].get<bool>());
  EXPECT_FALSE(fs::exists(root)) << "a dry run trains nothing";
  fs::remove(root + ".json");
  const std::string bad = std::string(AMALGAM_BINARY) + " zoo build --preset huge --dry-run 2>/dev/null";
  EXPECT_NE(std::system(bad.c_str()), 0);
}

TEST(ZooPresets, TinyInstructExpertsReplayTheInstructMixture) {
  const ZooPreset p = zoo_preset("tiny");
  ASSERT_GT(p.expert_replay, 0.0);
  const Zoo zoo(p, 0, temp_dir("specs"));  // builds the model list only, trains nothing
  const auto& e = zoo.spec("expert-instruct-sort");
  ASSERT_EQ(e.mixture.size(), p.held_in.size());
  const double share = p.expert_replay / static_cast<double>(p.held_in.size());
  double total = 0;
  for (const auto& [family, w] : e.mixture) {
    EXPECT_NEAR(w, family == "sort" ? 1.0 - p.expert_replay + share : share, 1e-12) << family;
    total += w;
  }
  EXPECT_NEAR(total, 1.0, 1e-12);
  // Experts from the pretrained base and the micro preset's experts stay pure.
  EXPECT_EQ(zoo.spec("expert-base-sort").mixture.size(), 1u);
  const Zoo micro(zoo_preset("micro"), 0, temp_dir("specs-micro"));
  EXPECT_EQ(micro.spec("expert-instruct-reverse").mixture.size(), 1u);
}

}  // namespace
}  // namespace amalgam::zoo
