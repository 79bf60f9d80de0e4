// Runs the built `amalgam synth` binary into temporary directories.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/cli_test_util.h"

#include "io/model_dir.h"

namespace {

namespace fs = std::filesystem;

using Result = amalgam::testing::CommandResult;
using amalgam::testing::slurp;
Result amalgam(const std::string& args, const std::string& err_file = "/dev/null") {
  return amalgam::testing::run_amalgam(args, err_file);
}

struct Tmp {
  fs::path path = fs::temp_directory_path() / ("amalgam-cli-synth-" + std::to_string(::getpid()));
  Tmp() {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~Tmp() { fs::remove_all(path); }
  std::string operator/(const std::string& s) const { return (path / s).string(); }
};

TEST(CliSynth, DryRunJsonMatchesQwen2HalfB) {
  Tmp tmp;
  Result r = amalgam("synth " + (tmp / "q") + " --family qwen2 --size 0.5B --dry-run --json");
  ASSERT_EQ(r.status, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["preset"], "Qwen2-0.5B");
  EXPECT_EQ(j["hidden_size"], 896);
  EXPECT_EQ(j["num_hidden_layers"], 24);
  EXPECT_EQ(j["num_attention_heads"], 14);
  EXPECT_EQ(j["num_key_value_heads"], 2);
  EXPECT_EQ(j["intermediate_size"], 4864);
  EXPECT_EQ(j["vocab_size"], 151936);
  EXPECT_EQ(j["tie_word_embeddings"], true);
  EXPECT_EQ(j["params"], 494032768);
  EXPECT_EQ(j["bytes_per_model"], 2 * 494032768LL);
  EXPECT_EQ(j["models"].size(), 3u);
  EXPECT_EQ(j["written"], false);
  EXPECT_FALSE(fs::exists(tmp / "q"));
}

TEST(CliSynth, WritesFamiliesWithRealNames) {
  Tmp tmp;
  Result r = amalgam("synth " + (tmp / "g") + " --family gpt2 --size 2M --dtype f16 --experts 1 --json");
  ASSERT_EQ(r.status, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  auto m = amalgam::ModelDir::open(tmp / "g/expert_1");
  EXPECT_EQ(m->parameter_count(), j["params"].get<uint64_t>());
  EXPECT_LT(std::abs(double(m->parameter_count()) / 2e6 - 1), 0.15);
  const int64_t h = j["hidden_size"];
  auto attn = m->get("transformer.h.0.attn.c_attn.weight");
  EXPECT_EQ(attn.info->shape, (std::vector<int64_t>{h, 3 * h}));
  EXPECT_EQ(attn.info->dtype, amalgam::DType::F16);
  EXPECT_TRUE(m->find("transformer.wpe.weight"));
  EXPECT_TRUE(m->find("transformer.ln_f.bias"));
  EXPECT_FALSE(m->find("lm_head.weight"));
  EXPECT_EQ(m->config()["architectures"][0], "GPT2LMHeadModel");
  EXPECT_EQ(m->config()["n_embd"], h);
  EXPECT_FALSE(fs::exists(tmp / "g/expert_2"));
}

TEST(CliSynth, SameSeedSameBytesAnyThreadCount) {
  Tmp tmp;
  ASSERT_EQ(amalgam("synth " + (tmp / "a") + " --family mistral --size 1M --seed 3 --threads 1").status, 0);
  ASSERT_EQ(amalgam("synth " + (tmp / "b") + " --family mistral --size 1M --seed 3 --threads 3").status, 0);
  ASSERT_EQ(amalgam("synth " + (tmp / "c") + " --family mistral --size 1M --seed 4").status, 0);
  for (const char* m : {"base", "expert_1", "expert_2"}) {
    for (const char* f : {"model.safetensors", "config.json", "generation_config.json"}) {
      const std::string a = slurp(tmp.path / "a" / m / f);
      EXPECT_FALSE(a.empty());
      EXPECT_EQ(a, slurp(tmp.path / "b" / m / f)) << m << "/" << f;
    }
    EXPECT_NE(slurp(tmp.path / "a" / m / "model.safetensors"),
              slurp(tmp.path / "c" / m / "model.safetensors"));
  }
  EXPECT_NE(slurp(tmp.path / "a/base/model.safetensors"), slurp(tmp.path / "a/expert_1/model.safetensors"));
}

TEST(CliSynth, BadInputsGiveOneLineAndUsageStatus) {
  Tmp tmp;
  const std::string err = tmp / "err.txt";
  for (const std::string args : {"--family bert --size 1M", "--family llama --size 1Q",
                                 "--family llama --size 10", "--family llama --size 1M --dtype i8",
                                 "--family llama --size 1M --experts -2"}) {
    Result r = amalgam("synth " + (tmp / "x") + " " + args, err);
    EXPECT_EQ(r.status, 2) << args;
    const std::string e = slurp(err);
    EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << args << ": " << e;
    EXPECT_EQ(e.rfind("amalgam: error:", 0), 0u) << e;
  }
  EXPECT_FALSE(fs::exists(tmp / "x"));
  // Non-empty output: refused without --force, replaced with it.
  fs::create_directories(tmp.path / "full");
  std::ofstream(tmp.path / "full" / "f") << "x";
  EXPECT_EQ(amalgam("synth " + (tmp / "full") + " --family llama --size 1M").status, 2);
  EXPECT_EQ(amalgam("synth " + (tmp / "full") + " --family llama --size 1M --experts 0 --force").status, 0);
  EXPECT_TRUE(fs::exists(tmp.path / "full/base/model.safetensors"));
  EXPECT_FALSE(fs::exists(tmp.path / "full/f"));
}

}  // namespace
