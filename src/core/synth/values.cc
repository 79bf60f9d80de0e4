#include "synth/values.h"

#include <cmath>

namespace amalgam::synth {

namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;

inline uint64_t mix64(uint64_t z) {  // splitmix64's finalizer
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Streams of one tensor's generator.
enum Stream : uint64_t {
  kBase = 1,
  kNoise = 2,
  kSparse = 3,
  kPrivateU = 4,
  kPrivateV = 5,
  kSharedU = 6,
  kSharedV = 7,
};

}  // namespace

uint64_t hash_name(const std::string& name) {  // FNV-1a, then mixed
  uint64_t h = 0xCBF29CE484222325ULL;
  for (unsigned char c : name) h = (h ^ c) * 0x100000001B3ULL;
  return mix64(h);
}

uint64_t stream_key(uint64_t key, uint64_t stream) { return mix64(key ^ mix64(stream + kGolden)); }

uint64_t counter_bits(uint64_t key, uint64_t index) { return mix64(key + index * kGolden); }

float normal_from_bits(uint64_t bits) {
  // Inverse normal CDF of a 53-bit uniform (Acklam's rational approximation, relative
  // error < 1.2e-9): only the 5% of draws in the tails need a log, so this is several
  // times faster than Box-Muller, and uses one 64-bit draw per normal.
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                 -2.759285104469687e+02, 1.383577518672690e+02,
                                 -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                 -1.556989798598866e+02, 6.680131188771972e+01,
                                 -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                 -2.400758277161838e+00, -2.549732539343734e+00,
                                 4.374664141464968e+00, 2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                 2.445134137142996e+00, 3.754408661907416e+00};
  const double p = (static_cast<double>(bits >> 11) + 0.5) * (1.0 / 9007199254740992.0);
  constexpr double kLow = 0.02425;
  if (p >= kLow && p <= 1 - kLow) {
    const double q = p - 0.5, r = q * q;
    return static_cast<float>((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
                              (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1));
  }
  const double q = std::sqrt(-2 * std::log(p < kLow ? p : 1 - p));
  const double x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
                   ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  return static_cast<float>(p < kLow ? x : -x);
}

TensorValues::TensorValues(uint64_t seed, const TensorSpec& spec, int model, DeltaScales scales)
    : role_(spec.role), model_(model), scales_(scales) {
  const uint64_t tensor_key = stream_key(hash_name(spec.name), seed);
  base_key_ = stream_key(tensor_key, kBase);
  model_key_ = stream_key(tensor_key, 1000 + static_cast<uint64_t>(model));
  if (spec.shape.size() >= 2) {
    rows_ = static_cast<uint64_t>(spec.shape[0]);
    cols_ = spec.numel() / std::max<uint64_t>(1, rows_);
  } else {
    rows_ = 1;
    cols_ = spec.numel();
  }
  if (model_ == 0) return;
  sparse_threshold_ = static_cast<uint64_t>(scales_.sparse_rate * 18446744073709551616.0);
  const int r = scales_.rank;
  k_ = 2 * r;
  u_.resize(rows_ * k_);
  vt_.resize(cols_ * k_);
  const float priv = scales_.private_lowrank / std::sqrt(static_cast<float>(r));
  const float shared = scales_.shared_lowrank / std::sqrt(static_cast<float>(r));
  const uint64_t pu = stream_key(model_key_, kPrivateU), pv = stream_key(model_key_, kPrivateV);
  const uint64_t su = stream_key(tensor_key, kSharedU), sv = stream_key(tensor_key, kSharedV);
  for (uint64_t i = 0; i < rows_; ++i)
    for (int j = 0; j < r; ++j) {
      u_[i * k_ + j] = priv * normal_from_bits(counter_bits(pu, i * r + j));
      u_[i * k_ + r + j] = shared * normal_from_bits(counter_bits(su, i * r + j));
    }
  for (uint64_t i = 0; i < cols_; ++i)
    for (int j = 0; j < r; ++j) {
      vt_[i * k_ + j] = normal_from_bits(counter_bits(pv, i * r + j));
      vt_[i * k_ + r + j] = normal_from_bits(counter_bits(sv, i * r + j));
    }
}

void TensorValues::fill(uint64_t first, uint64_t count, float* out) const {
  float scale = 0.02f, offset = 0.0f;
  if (role_ == TensorRole::Norm) scale = 0.05f, offset = 1.0f;
  for (uint64_t i = 0; i < count; ++i)
    out[i] = offset + scale * normal_from_bits(counter_bits(base_key_, first + i));
  if (model_ == 0) return;

  const uint64_t noise_key = stream_key(model_key_, kNoise);
  const uint64_t sparse_key = stream_key(model_key_, kSparse);
  uint64_t r = first / cols_, c = first % cols_;
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t idx = first + i;
    const float* u = &u_[r * k_];
    const float* v = &vt_[c * k_];
    float d = 0;
    for (int j = 0; j < k_; ++j) d += u[j] * v[j];
    d += scales_.noise * normal_from_bits(counter_bits(noise_key, idx));
    const uint64_t s = counter_bits(sparse_key, idx);
    if (s < sparse_threshold_) {
      // Magnitude in [0.5, 1.5) x scale, sign from the lowest bit.
      const float m = scales_.sparse * (0.5f + static_cast<float>((s >> 1) & 0xFFFF) / 65536.0f);
      d += (s & 1) ? m : -m;
    }
    out[i] += d;
    if (++c == cols_) c = 0, ++r;
  }
}

}  // namespace amalgam::synth
