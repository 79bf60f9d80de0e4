// The values of synthetic weights. Every element is a pure function of (seed, tensor
// name, model, element index) through a counter-based generator (splitmix64 in counter
// mode), so output bytes do not depend on chunking or thread count.
// Base: normal(0, 0.02) matrices, norms ~ 1 + normal(0, 0.05), small biases.
// Fine-tune e: base + delta_e, delta_e = shared low-rank (common to all fine-tunes, so
// task vectors correlate) + private low-rank + sparse large changes + small dense noise
// (the private parts make fine-tunes disagree in sign on many coordinates).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "synth/family.h"

namespace amalgam::synth {

// Scales of the delta parts (RMS of each part); exposed for tests and docs.
struct DeltaScales {
  float shared_lowrank = 4e-4f;
  float private_lowrank = 6e-4f;
  float noise = 2e-4f;
  float sparse = 4e-3f;         // magnitude of a sparse change
  double sparse_rate = 0.002;   // share of coordinates with a sparse change
  int rank = 4;                 // rank of each low-rank part
};

class TensorValues {
 public:
  // model 0 is the base; model e >= 1 is fine-tune e. Builds the tensor's low-rank
  // factors ((rows + cols) x 2 x rank floats), nothing proportional to the tensor.
  TensorValues(uint64_t seed, const TensorSpec& spec, int model, DeltaScales scales = {});

  // Elements [first, first + count) in row-major order, as f32.
  void fill(uint64_t first, uint64_t count, float* out) const;

 private:
  uint64_t base_key_, model_key_;
  TensorRole role_;
  int model_;
  uint64_t rows_ = 1, cols_ = 1;
  DeltaScales scales_;
  uint64_t sparse_threshold_ = 0;
  int k_ = 0;                       // factor width (2 x rank)
  std::vector<float> u_, vt_;       // [rows][k], [cols][k]; delta = u[r] . vt[c]
};

// Counter-based generator primitives (shared with tests).
uint64_t hash_name(const std::string& name);
uint64_t stream_key(uint64_t key, uint64_t stream);
uint64_t counter_bits(uint64_t stream_key, uint64_t index);
float normal_from_bits(uint64_t bits);

}  // namespace amalgam::synth
