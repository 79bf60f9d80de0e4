#include "synth/synth.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "io/model_dir.h"
#include "synth/values.h"
#include "util/error.h"

namespace amalgam::synth {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("amalgam-synth-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  static int& counter() {
    static int c = 0;
    return c;
  }
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

SynthOptions small(Family f) {
  SynthOptions o;
  o.family = f;
  o.params = 300000;
  o.experts = 2;
  o.seed = 11;
  return o;
}

TEST(Synth, WritesEveryFamilyWithTheDeclaredTensors) {
  for (Family f : {Family::Llama, Family::Mistral, Family::Qwen2, Family::Gpt2}) {
    TempDir tmp;
    SynthOptions o = small(f);
    SynthPlan plan = write_synth((tmp.path / "out").string(), o);
    ASSERT_EQ(plan.models.size(), 3u);
    for (const auto& name : plan.models) {
      auto m = ModelDir::open((tmp.path / "out" / name).string());
      const auto specs = tensor_specs(plan.shape);
      ASSERT_EQ(m->tensor_names().size(), specs.size()) << family_name(f);
      for (const auto& s : specs) {
        TensorRef r = m->get(s.name);
        EXPECT_EQ(r.info->shape, s.shape) << s.name;
        EXPECT_EQ(r.info->dtype, DType::BF16) << s.name;
      }
      EXPECT_EQ(m->parameter_count(), plan.params);
      EXPECT_EQ(m->config()["model_type"], family_name(f));
      EXPECT_EQ(m->config()["torch_dtype"], "bfloat16");
    }
    EXPECT_FALSE(fs::exists(tmp.path / "out" / "expert_3"));
  }
}

TEST(Synth, BytesDoNotDependOnThreadsOrChunks) {
  TempDir tmp;
  SynthOptions a = small(Family::Qwen2);
  SynthOptions b = a;
  b.threads = 3;
  b.chunk_elements = 4099;
  write_synth((tmp.path / "a").string(), a);
  write_synth((tmp.path / "b").string(), b);
  for (const char* m : {"base", "expert_1", "expert_2"}) {
    const std::string x = slurp(tmp.path / "a" / m / "model.safetensors");
    EXPECT_GT(x.size(), 500000u);
    EXPECT_EQ(x, slurp(tmp.path / "b" / m / "model.safetensors")) << m;
    EXPECT_EQ(slurp(tmp.path / "a" / m / "config.json"), slurp(tmp.path / "b" / m / "config.json"));
  }
  SynthOptions c = a;
  c.seed = 12;
  write_synth((tmp.path / "c").string(), c);
  EXPECT_NE(slurp(tmp.path / "a/base/model.safetensors"), slurp(tmp.path / "c/base/model.safetensors"));
}

TEST(Synth, StoredValuesAreTheGeneratorsRounded) {
  TempDir tmp;
  SynthOptions o = small(Family::Llama);
  o.dtype = DType::F32;
  SynthPlan plan = write_synth((tmp.path / "o").string(), o);
  auto m = ModelDir::open((tmp.path / "o/expert_2").string());
  for (const auto& s : tensor_specs(plan.shape)) {
    TensorRef r = m->get(s.name);
    std::vector<float> stored(s.numel()), want(s.numel());
    r.file->read_f32(*r.info, 0, s.numel(), stored.data());
    TensorValues(o.seed, s, 2).fill(0, s.numel(), want.data());
    ASSERT_EQ(stored, want) << s.name;
  }
}

TEST(Synth, ShardsAndPlanAgree) {
  TempDir tmp;
  SynthOptions o = small(Family::Gpt2);
  o.experts = 0;
  o.max_shard_bytes = 150000;
  SynthPlan plan = write_synth((tmp.path / "o").string(), o);
  EXPECT_GT(plan.shards_per_model, 1u);
  auto m = ModelDir::open((tmp.path / "o/base").string());
  EXPECT_EQ(m->files().size(), plan.shards_per_model);
  EXPECT_TRUE(fs::exists(tmp.path / "o/base/model.safetensors.index.json"));
  EXPECT_EQ(m->parameter_count(), plan.params);
}

TEST(Synth, RefusesNonEmptyOutputUnlessForced) {
  TempDir tmp;
  fs::create_directories(tmp.path / "o");
  std::ofstream(tmp.path / "o" / "keep.txt") << "x";
  SynthOptions o = small(Family::Llama);
  o.experts = 1;
  EXPECT_THROW(write_synth((tmp.path / "o").string(), o), Error);
  EXPECT_TRUE(fs::exists(tmp.path / "o" / "keep.txt"));
  o.force = true;
  write_synth((tmp.path / "o").string(), o);
  EXPECT_FALSE(fs::exists(tmp.path / "o" / "keep.txt"));
  EXPECT_TRUE(fs::exists(tmp.path / "o" / "expert_1" / "model.safetensors"));
  // An existing empty directory is fine without --force, with or without a slash.
  fs::create_directories(tmp.path / "empty");
  write_synth((tmp.path / "empty").string() + "/", o);
  EXPECT_TRUE(fs::exists(tmp.path / "empty" / "base" / "model.safetensors"));
  EXPECT_EQ(std::distance(fs::directory_iterator(tmp.path), fs::directory_iterator()), 2);
}

// A file system that fails after a number of writes: nothing may be left behind.
struct FailingEnv : FileEnv {
  struct File : WritableFile {
    std::unique_ptr<WritableFile> inner;
    int* budget;
    void write_at(uint64_t off, const void* d, size_t n) override {
      if ((*budget)-- <= 0) throw Error(ErrorKind::Io, "injected: disk full");
      inner->write_at(off, d, n);
    }
    void sync() override { inner->sync(); }
    void close() override { inner->close(); }
  };
  int budget = 20;
  std::unique_ptr<WritableFile> create(const std::string& path) override {
    auto f = std::make_unique<File>();
    f->inner = FileEnv::posix()->create(path);
    f->budget = &budget;
    return f;
  }
};

TEST(Synth, FailureLeavesNothing) {
  TempDir tmp;
  FailingEnv env;
  SynthOptions o = small(Family::Llama);
  o.env = &env;
  o.chunk_elements = 1000;
  o.threads = 2;
  try {
    write_synth((tmp.path / "o").string(), o);
    FAIL() << "expected the injected error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io);
  }
  EXPECT_TRUE(fs::is_empty(tmp.path)) << "left: " << fs::directory_iterator(tmp.path)->path();
}

TEST(Synth, PlanRejectsBadOptions) {
  SynthOptions o = small(Family::Llama);
  o.dtype = DType::I32;
  EXPECT_THROW(plan_synth(o), Error);
  o = small(Family::Llama);
  o.experts = -1;
  EXPECT_THROW(plan_synth(o), Error);
  o = small(Family::Llama);
  o.params = 1000;
  EXPECT_THROW(plan_synth(o), Error);
}

}  // namespace
}  // namespace amalgam::synth
