// Test support (included by *_test.cc only): writes a WeightMap as a Hugging Face model
// directory (config.json + safetensors through ShardedWriter, in any float dtype), runs a
// shell command, and makes fresh scratch directories.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "io/safetensors_writer.h"
#include "kernels/convert.h"
#include "torch/eval/causal_lm.h"

namespace amalgam::testing_model {

inline std::string scratch_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("amalgam_eval_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// Writes `weights` (f32 tensors) stored as `dtype` into `dir`, plus config.json.
inline void write_model(const std::string& dir, const nlohmann::json& config, const WeightMap& weights,
                        DType dtype = DType::F32, uint64_t max_shard_bytes = 0) {
  std::filesystem::create_directories(dir);
  std::vector<std::string> names;
  for (const auto& [name, t] : weights) names.push_back(name);
  std::sort(names.begin(), names.end());
  std::vector<OutputTensor> decl;
  for (const auto& n : names) decl.push_back({n, dtype, weights.at(n).sizes().vec()});
  ShardedWriter writer(dir, decl, max_shard_bytes);
  for (size_t i = 0; i < names.size(); ++i) {
    auto t = weights.at(names[i]).detach().to(torch::kFloat32).contiguous();
    std::vector<uint8_t> bytes(t.numel() * dtype_size(dtype));
    from_f32(dtype, t.data_ptr<float>(), bytes.data(), t.numel());
    writer.write(i, 0, bytes.data(), bytes.size());
  }
  writer.finish();
  write_text(dir + "/config.json", config.dump(2));
}

inline int run(const std::string& command) { return std::system(command.c_str()); }

inline torch::Tensor ids_tensor(const std::vector<std::vector<int64_t>>& rows) {
  auto t = torch::zeros({static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())}, torch::kInt64);
  for (size_t r = 0; r < rows.size(); ++r)
    for (size_t c = 0; c < rows[r].size(); ++c) t[r][c] = rows[r][c];
  return t;
}

}  // namespace amalgam::testing_model
