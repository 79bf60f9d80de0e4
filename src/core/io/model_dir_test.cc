// Model directories: single and sharded checkpoints, config.json, tokenizer files, the
// Hugging Face cache layout (with a fake cache), and every broken-directory error.
#include "io/model_dir.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "io/safetensors_writer.h"
#include "io/testing.h"
#include "util/error.h"

namespace amalgam {
namespace {
using namespace testing_io;

// Writes a checkpoint through the real writer; values are irrelevant here.
void write_model(const std::string& dir, uint64_t shard_limit) {
  std::vector<OutputTensor> ts = {{"embed", DType::BF16, {10, 4}},
                                  {"layer.0.w", DType::F32, {4, 4}},
                                  {"layer.1.w", DType::F32, {4, 4}},
                                  {"norm", DType::F16, {4}}};
  ShardedWriter w(dir, ts, shard_limit);
  for (size_t i = 0; i < w.tensor_count(); ++i) {
    std::vector<uint8_t> zeros(64 * 4, 0);
    size_t n = dtype_size(w.tensor(i).dtype);
    for (int64_t d : w.tensor(i).shape) n *= static_cast<size_t>(d);
    w.write(i, 0, zeros.data(), n);
  }
  w.finish();
  write_bytes(dir + "/config.json", R"({"model_type":"llama","hidden_size":4,"torch_dtype":"bfloat16"})");
}

class EnvGuard {
 public:
  explicit EnvGuard(const char* name) : name_(name) {
    if (const char* v = std::getenv(name)) old_ = v;
  }
  ~EnvGuard() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

void expect_input_error(const std::string& ref, const std::vector<std::string>& parts) {
  try {
    ModelDir::open(ref);
    ADD_FAILURE() << ref << ": accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Input) << e.what();
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

TEST(ModelDir, SingleFile) {
  TempDir dir;
  write_model(dir.path().string(), 0);
  write_bytes(dir / "tokenizer.json", "{}");
  write_bytes(dir / "tokenizer_config.json", "{}");
  write_bytes(dir / "generation_config.json", "{}");
  auto m = ModelDir::open(dir.path().string());
  EXPECT_TRUE(m->has_config());
  EXPECT_EQ(m->config()["model_type"], "llama");
  EXPECT_EQ(m->files().size(), 1u);
  EXPECT_EQ(m->tensor_names(), (std::vector<std::string>{"embed", "layer.0.w", "layer.1.w", "norm"}));
  EXPECT_EQ(m->parameter_count(), 40u + 16 + 16 + 4);
  EXPECT_EQ(m->tensor_bytes(), 80u + 64 + 64 + 8);
  EXPECT_EQ(m->get("norm").info->dtype, DType::F16);
  EXPECT_FALSE(m->find("nope").has_value());
  {
    try {
      m->get("nope");
      ADD_FAILURE();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("'nope'"), std::string::npos);
    }
  }
  EXPECT_EQ(m->tokenizer_files(), (std::vector<std::string>{"tokenizer.json", "tokenizer_config.json"}));
  EXPECT_EQ(m->generation_config_file(), "generation_config.json");
}

TEST(ModelDir, ShardedThroughIndex) {
  TempDir dir;
  write_model(dir.path().string(), 100);
  auto m = ModelDir::open(dir.path().string());
  EXPECT_GT(m->files().size(), 1u);
  EXPECT_EQ(m->tensor_names().size(), 4u);
  EXPECT_EQ(m->parameter_count(), 76u);
  for (const auto& n : m->tensor_names()) EXPECT_EQ(m->get(n).info->name, n);
  EXPECT_FALSE(m->generation_config_file().has_value());
}

TEST(ModelDir, NoConfigIsAllowed) {
  TempDir dir;
  write_model(dir.path().string(), 0);
  std::filesystem::remove(dir / "config.json");
  auto m = ModelDir::open(dir.path().string());
  EXPECT_FALSE(m->has_config());
  EXPECT_TRUE(m->config().empty());
}

TEST(ModelDir, BadConfig) {
  TempDir dir;
  write_model(dir.path().string(), 0);
  write_bytes(dir / "config.json", "{\"model_type\": ");
  expect_input_error(dir.path().string(), {"config.json", "not valid JSON"});
  write_bytes(dir / "config.json", "[1]");
  expect_input_error(dir.path().string(), {"config.json", "not a JSON object"});
  std::filesystem::remove(dir / "config.json");
  std::filesystem::create_directory(dir / "config.json");  // exists but cannot be read as a file
  expect_input_error(dir.path().string(), {"config.json"});
}

TEST(ModelDir, BadIndexFiles) {
  TempDir dir;
  const std::string d = dir.path().string();
  write_model(d, 100);
  const std::string idx = dir / "model.safetensors.index.json";
  const std::string good = read_bytes(idx);
  auto weight_map = nlohmann::json::parse(good)["weight_map"];
  const std::string shard_of_embed = weight_map["embed"];
  const std::string other_shard = weight_map["norm"];
  ASSERT_NE(shard_of_embed, other_shard);

  write_bytes(idx, R"({"weight_map":{"embed":"model-00009-of-00009.safetensors"}})");
  expect_input_error(d, {"model.safetensors.index.json", "model-00009-of-00009.safetensors", "missing"});

  write_bytes(idx, R"({"weight_map":{"embed":")" + other_shard + R"("}})");
  expect_input_error(d, {"model.safetensors.index.json", "'embed'", "not in its shard"});

  write_bytes(idx, R"({"weight_map":{"embed":")" + shard_of_embed + R"(","embed":")" + other_shard + R"("}})");
  expect_input_error(d, {"model.safetensors.index.json", "'embed'", "twice"});

  write_bytes(idx, "{\"weight_map\": [");
  expect_input_error(d, {"model.safetensors.index.json"});
  write_bytes(idx, R"({"metadata":{}})");
  expect_input_error(d, {"model.safetensors.index.json", "weight_map"});
  write_bytes(idx, R"({"weight_map":{"embed":"../etc/passwd"}})");
  expect_input_error(d, {"model.safetensors.index.json", "invalid file"});
  write_bytes(idx, R"({"weight_map":{"embed":7}})");
  expect_input_error(d, {"model.safetensors.index.json", "'embed'"});

  // The same tensor physically present in two shards, whatever the index says.
  write_bytes(idx, good);
  const std::string dup = d + "/dup";
  std::filesystem::create_directory(dup);
  ShardedWriter w(dup, {{"embed", DType::U8, {1}}}, 0);
  uint8_t b = 0;
  w.write(0, 0, &b, 1);
  w.finish();
  std::filesystem::rename(dup + "/model.safetensors", dir / "extra.safetensors");
  auto j = nlohmann::json::parse(good);
  j["weight_map"]["layer.9"] = "extra.safetensors";
  write_bytes(idx, j.dump());
  expect_input_error(d, {"'embed'", "two shards", "extra.safetensors"});
}

TEST(ModelDir, BrokenShardFileNamesTheShard) {
  TempDir dir;
  write_model(dir.path().string(), 0);
  write_bytes(dir / "model.safetensors", "short");
  expect_input_error(dir.path().string(), {"model.safetensors", "truncated"});
}

TEST(ModelDir, PytorchBinGetsAConversionHint) {
  TempDir dir;
  write_bytes(dir / "config.json", "{}");
  write_bytes(dir / "pytorch_model.bin", "PK");
  expect_input_error(dir.path().string(), {"pytorch_model.bin", "save_file", "torch.load"});
}

TEST(ModelDir, MissingThings) {
  TempDir dir;
  write_bytes(dir / "config.json", "{}");
  expect_input_error(dir.path().string(), {dir.path().string(), "safetensors"});
  expect_input_error(dir / "does-not-exist", {"does-not-exist"});
  expect_input_error(dir / "config.json", {"not a directory"});
}

TEST(ModelDir, HuggingFaceCache) {
  EnvGuard g1("HF_HUB_CACHE"), g2("HF_HOME");
  TempDir cache;
  const std::string hash = "0123456789abcdef0123456789abcdef01234567";
  const auto repo = cache.path() / "models--acme--tiny-llama";
  const auto snap = repo / "snapshots" / hash;
  std::filesystem::create_directories(snap);
  write_model(snap.string(), 0);
  write_bytes((repo / "refs" / "main").string(), hash + "\n");
  const std::string old = "fedcba9876543210fedcba9876543210fedcba98";
  std::filesystem::create_directories(repo / "snapshots" / old);
  write_model((repo / "snapshots" / old).string(), 100);
  write_bytes((repo / "refs" / "v1").string(), old);

  ::setenv("HF_HUB_CACHE", cache.path().c_str(), 1);
  ::unsetenv("HF_HOME");
  EXPECT_EQ(resolve_hf_cache("acme/tiny-llama"), snap.string());
  EXPECT_EQ(resolve_hf_cache("acme/tiny-llama@v1"), (repo / "snapshots" / old).string());
  EXPECT_EQ(resolve_hf_cache("acme/tiny-llama@" + old), (repo / "snapshots" / old).string());
  EXPECT_FALSE(resolve_hf_cache("acme/other").has_value());
  EXPECT_FALSE(resolve_hf_cache("acme/tiny-llama@nope").has_value());
  auto m = ModelDir::open("acme/tiny-llama");
  EXPECT_EQ(m->ref(), "acme/tiny-llama");
  EXPECT_EQ(m->path(), snap.string());
  EXPECT_EQ(m->files().size(), 1u);
  EXPECT_EQ(ModelDir::open("acme/tiny-llama@v1")->files().size(), 3u);
  expect_input_error("acme/missing-model", {"acme/missing-model", "Hugging Face cache", cache.path().string()});

  // HF_HOME/hub is the fallback when HF_HUB_CACHE is unset.
  TempDir home;
  std::filesystem::create_directories(home.path() / "hub");
  std::filesystem::rename(repo, home.path() / "hub" / "models--acme--tiny-llama");
  ::unsetenv("HF_HUB_CACHE");
  ::setenv("HF_HOME", home.path().c_str(), 1);
  EXPECT_EQ(resolve_hf_cache("acme/tiny-llama"),
            (home.path() / "hub" / "models--acme--tiny-llama" / "snapshots" / hash).string());
}

}  // namespace
}  // namespace amalgam
