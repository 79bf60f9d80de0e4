// Test-only helpers for the method tests: job construction, random tensors, bit equality.
#pragma once
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "methods/in_memory.h"
#include "methods/method.h"

namespace amalgam::testing_util {

inline TensorJob make_job(std::vector<int64_t> shape, size_t n_inputs, int base,
                          std::vector<std::map<std::string, double>> model_params = {},
                          std::map<std::string, double> params = {}) {
  TensorJob job;
  job.name = "model.layers.0.mlp.down_proj.weight";
  job.shape = std::move(shape);
  for (size_t i = 0; i < n_inputs; ++i) job.input_labels.push_back("model" + std::to_string(i));
  job.base = base;
  model_params.resize(n_inputs);
  job.model_params = std::move(model_params);
  job.params = std::move(params);
  return job;
}

// base ~ N(0, 1); others = base + N(0, delta_scale). bf16 = round every value to bf16.
inline std::vector<std::vector<float>> random_models(size_t n_models, size_t numel, uint64_t seed,
                                                     float delta_scale = 0.05f, bool bf16 = false) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<std::vector<float>> out(n_models, std::vector<float>(numel));
  for (size_t i = 0; i < numel; ++i) out[0][i] = nd(rng);
  for (size_t m = 1; m < n_models; ++m)
    for (size_t i = 0; i < numel; ++i) out[m][i] = out[0][i] + delta_scale * nd(rng);
  if (bf16)
    for (auto& v : out)
      for (float& x : v) {
        uint32_t u;
        std::memcpy(&u, &x, 4);
        u = (u + 0x7fff + ((u >> 16) & 1)) & 0xffff0000u;
        std::memcpy(&x, &u, 4);
      }
  return out;
}

inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace amalgam::testing_util
