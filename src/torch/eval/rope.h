// Rotary position embeddings of the Llama family, with the rope_scaling variants found in
// released configs: default, linear, dynamic (NTK) and llama3, computed exactly as
// transformers' modeling_rope_utils.py does so that logits match to float precision.
#pragma once
#include <utility>

#include <torch/torch.h>

#include "torch/eval/causal_lm.h"

namespace amalgam {

// Inverse frequencies [head_dim / 2] (f32) for sequences whose largest position is
// `max_position` (only the dynamic scaling depends on it).
torch::Tensor rope_inv_freq(const ModelConfig& config, int64_t max_position);

// cos and sin [B, T, head_dim] in `dtype` for position ids [B, T].
std::pair<torch::Tensor, torch::Tensor> rope_cos_sin(const ModelConfig& config,
                                                     const torch::Tensor& positions,
                                                     torch::Dtype dtype);

// x [B, H, T, d] rotated: x * cos + rotate_half(x) * sin.
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

}  // namespace amalgam
