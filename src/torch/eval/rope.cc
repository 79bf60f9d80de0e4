// RoPE frequencies and rotation; see rope.h. Formulas: transformers
// modeling_rope_utils.py (_compute_default/linear/dynamic_ntk/llama3_parameters).
#include "torch/eval/rope.h"

#include <cmath>

namespace amalgam {

torch::Tensor rope_inv_freq(const ModelConfig& c, int64_t max_position) {
  int64_t dim = c.dim_per_head();
  double base = c.rope_theta;
  const auto& rs = c.rope_scaling;
  std::string type = rs.is_object() ? rs.value("rope_type", rs.value("type", std::string("default")))
                                    : std::string("default");
  double factor = rs.is_object() ? rs.value("factor", 1.0) : 1.0;
  if (type == "dynamic") {
    // NTK-aware base growth once the sequence outgrows the trained context.
    int64_t seq_len = max_position + 1;
    if (seq_len > c.max_position_embeddings) {
      double ratio = factor * static_cast<double>(seq_len) / c.max_position_embeddings - (factor - 1);
      base = base * std::pow(ratio, static_cast<double>(dim) / (dim - 2));
    }
  }
  auto exponents = torch::arange(0, dim, 2, torch::kInt64).to(torch::kFloat32) / static_cast<float>(dim);
  auto inv_freq = 1.0 / torch::pow(torch::scalar_tensor(base, torch::kFloat32), exponents);
  if (type == "linear") return inv_freq / factor;
  if (type == "llama3") {
    double low = rs["low_freq_factor"].get<double>(), high = rs["high_freq_factor"].get<double>();
    double old_ctx = rs["original_max_position_embeddings"].get<double>();
    double low_wavelen = old_ctx / low, high_wavelen = old_ctx / high;
    auto wavelen = 2 * M_PI / inv_freq;
    auto scaled = torch::where(wavelen > low_wavelen, inv_freq / factor, inv_freq);
    auto smooth = (old_ctx / wavelen - low) / (high - low);
    auto smoothed = (1 - smooth) * scaled / factor + smooth * scaled;
    auto medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen);
    return torch::where(medium, smoothed, scaled);
  }
  return inv_freq;
}

std::pair<torch::Tensor, torch::Tensor> rope_cos_sin(const ModelConfig& c, const torch::Tensor& positions,
                                                     torch::Dtype dtype) {
  int64_t max_pos = positions.numel() ? positions.max().item<int64_t>() : 0;
  auto inv_freq = rope_inv_freq(c, max_pos);
  auto freqs = positions.to(torch::kFloat32).unsqueeze(-1) * inv_freq;  // [B, T, d/2]
  auto emb = torch::cat({freqs, freqs}, -1);
  return {emb.cos().to(dtype).unsqueeze(1), emb.sin().to(dtype).unsqueeze(1)};  // [B, 1, T, d]
}

torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  int64_t half = x.size(-1) / 2;
  auto rotated = torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos + rotated * sin;
}

}  // namespace amalgam
