// Test helper for exec/ and `amalgam merge` tests: writes small llama-shaped checkpoints
// (config.json, tokenizer files, safetensors through the real ShardedWriter) whose values
// are a deterministic function of (seed, tensor, element): experts are the base plus a
// small seeded perturbation, all magnitudes distinct, so magnitude ranking has no ties.
#pragma once
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "exec/executor.h"
#include "io/dtype.h"
#include "io/safetensors_writer.h"
#include "kernels/convert.h"

namespace amalgam::exec_test {

struct ModelSpec {
  int layers = 2, vocab = 2048, hidden = 64, intermediate = 2048;
  DType dtype = DType::F32;
  uint64_t seed = 0;         // 0: the base; experts use other seeds
  float noise = 0.02f;       // expert perturbation scale (0 for the base)
  uint64_t shard_bytes = 1ull << 40;
};

inline uint64_t mix(uint64_t x) {  // splitmix64
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
inline float uniform(uint64_t key) {  // in (-1, 1)
  return static_cast<float>((mix(key) >> 40) * (2.0 / 16777216.0) - 1.0 + 1.0 / 16777216.0);
}

inline std::vector<std::pair<std::string, std::vector<int64_t>>> llama_shapes(const ModelSpec& s) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> t = {
      {"model.embed_tokens.weight", {s.vocab, s.hidden}}};
  for (int i = 0; i < s.layers; ++i) {
    std::string p = "model.layers." + std::to_string(i) + ".";
    t.push_back({p + "input_layernorm.weight", {s.hidden}});
    t.push_back({p + "self_attn.q_proj.weight", {s.hidden, s.hidden}});
    t.push_back({p + "self_attn.k_proj.weight", {s.hidden, s.hidden}});
    t.push_back({p + "mlp.up_proj.weight", {s.intermediate, s.hidden}});
    t.push_back({p + "mlp.down_proj.weight", {s.hidden, s.intermediate}});
  }
  t.push_back({"model.norm.weight", {s.hidden}});
  t.push_back({"lm_head.weight", {s.vocab, s.hidden}});
  return t;
}

inline void write_text(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}
inline std::string read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Writes the model into `dir` (created; replaced if present).
inline void write_model(const std::string& dir, const ModelSpec& s) {
  namespace fs = std::filesystem;
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto shapes = llama_shapes(s);
  std::vector<OutputTensor> out;
  for (auto& [name, shape] : shapes) out.push_back({name, s.dtype, shape});
  ShardedWriter w(dir, out, s.shard_bytes);
  for (size_t i = 0; i < shapes.size(); ++i) {
    uint64_t n = 1;
    for (int64_t d : shapes[i].second) n *= d;
    std::vector<float> f(n);
    for (uint64_t k = 0; k < n; ++k) {
      uint64_t key = (i << 40) ^ k;
      f[k] = 0.5f * uniform(key) + s.noise * uniform(key * 31 + s.seed * 0x1234567ull + 7);
    }
    std::vector<uint8_t> bytes(n * dtype_size(s.dtype));
    from_f32(s.dtype, f.data(), bytes.data(), n);
    w.write(i, 0, bytes.data(), bytes.size());
  }
  w.finish();
  nlohmann::json config = {{"architectures", {"LlamaForCausalLM"}},
                           {"model_type", "llama"},
                           {"num_hidden_layers", s.layers},
                           {"hidden_size", s.hidden},
                           {"intermediate_size", s.intermediate},
                           {"vocab_size", s.vocab},
                           {"torch_dtype", std::string(torch_dtype_name(s.dtype))},
                           {"tie_word_embeddings", false}};
  write_text(fs::path(dir) / "config.json", config.dump(2));
  write_text(fs::path(dir) / "tokenizer_config.json",
             "{\"model_max_length\": 2048, \"seed\": " + std::to_string(s.seed) + "}\n");
  write_text(fs::path(dir) / "generation_config.json", "{\"do_sample\": false}\n");
}

// A fresh scratch directory for one test, under a per-process directory that is removed
// when the test process exits (ctest runs each test in its own process; without this every
// run left its models behind in /tmp).
inline std::string scratch_dir(const std::string& name) {
  namespace fs = std::filesystem;
  struct ProcessDir {
    fs::path path = fs::path(testing::TempDir()) / ("amalgam_exec_" + std::to_string(getpid()));
    ~ProcessDir() {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  };
  static ProcessDir root;
  fs::path p = root.path / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

// Parses `recipe_text`, plans it and executes the plan into `out`.
inline ExecResult merge_text(const std::string& recipe_text, const std::string& out, ExecOptions o = {}) {
  Recipe recipe = parse_recipe_text(recipe_text);
  ModelSet set;
  MergePlan plan = make_plan(recipe, set, PlanOptions{});
  return execute_plan(plan, set, recipe, out, o);
}

// Concatenated bytes of every *.safetensors and index file in `dir`, in name order.
inline std::string weight_bytes(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<std::string> names;
  for (auto& e : fs::directory_iterator(dir)) {
    std::string n = e.path().filename().string();
    if (n.find(".safetensors") != std::string::npos) names.push_back(n);
  }
  std::sort(names.begin(), names.end());
  std::string all;
  for (auto& n : names) all += n + "\n" + read_bytes(fs::path(dir) / n);
  return all;
}

}  // namespace amalgam::exec_test
