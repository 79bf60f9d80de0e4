// The functional forward of the supported decoder-only families. One code path: the
// Llama family (Llama, Mistral, Qwen2: RMSNorm, RoPE, GQA, SwiGLU) and GPT-2 (LayerNorm,
// learned positions, Conv1D weights stored [in, out], gelu_new) differ only in the
// embedding, the attention projections and the MLP. Mirrors transformers'
// modeling_llama.py / modeling_mistral.py / modeling_qwen2.py / modeling_gpt2.py (eager).
#include <cmath>
#include <limits>

#include "torch/eval/causal_lm.h"
#include "torch/eval/rope.h"
#include "util/error.h"

namespace amalgam {
namespace {

const torch::Tensor& get(const WeightMap& w, const std::string& name) {
  auto it = w.find(name);
  if (it == w.end()) fail(ErrorKind::Input, "model weights: missing tensor '{}'", name);
  return it->second;
}

const torch::Tensor* find(const WeightMap& w, const std::string& name) {
  auto it = w.find(name);
  return it == w.end() ? nullptr : &it->second;
}

// GPT-2 checkpoints exist with and without the "transformer." prefix.
const torch::Tensor& gpt2(const WeightMap& w, const std::string& name) {
  if (auto* t = find(w, "transformer." + name)) return *t;
  if (auto* t = find(w, name)) return *t;
  fail(ErrorKind::Input, "model weights: missing tensor 'transformer.{}'", name);
}

torch::Tensor linear(const torch::Tensor& x, const WeightMap& w, const std::string& prefix) {
  const torch::Tensor* bias = find(w, prefix + ".bias");
  return torch::linear(x, get(w, prefix + ".weight"), bias ? *bias : torch::Tensor());
}

// Conv1D of GPT-2: y = x @ W + b with W stored [in, out].
torch::Tensor conv1d(const torch::Tensor& x, const WeightMap& w, const std::string& prefix) {
  return torch::addmm(gpt2(w, prefix + ".bias"), x.reshape({-1, x.size(-1)}), gpt2(w, prefix + ".weight"))
      .view([&] {
        auto s = x.sizes().vec();
        s.back() = -1;
        return s;
      }());
}

// RMSNorm in f32 then back to the input dtype, then the weight (as LlamaRMSNorm does).
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  auto h = x.to(torch::kFloat32);
  h = h * torch::rsqrt(h.pow(2).mean(-1, true) + eps);
  return weight * h.to(x.scalar_type());
}

torch::Tensor activation(const torch::Tensor& x, const std::string& act) {
  if (act == "silu") return torch::silu(x);
  if (act == "gelu") return torch::gelu(x);
  if (act == "relu") return torch::relu(x);
  return torch::gelu(x, "tanh");  // gelu_new, gelu_pytorch_tanh
}

// Additive attention mask [B, 1, T, S]: query i (absolute index past + i) sees key j when
// j <= past + i, key j is a real token, and (sliding window) past + i - j < window.
torch::Tensor attention_bias(const torch::Tensor& full_mask, int64_t past, int64_t t,
                             std::optional<int64_t> window, torch::Dtype dtype) {
  int64_t s = full_mask.size(1);
  auto opts = torch::TensorOptions().dtype(torch::kInt64).device(full_mask.device());
  auto q = torch::arange(past, past + t, opts).unsqueeze(1);
  auto k = torch::arange(0, s, opts).unsqueeze(0);
  auto allowed = k <= q;
  if (window) allowed = allowed & ((q - k) < *window);
  allowed = allowed.unsqueeze(0) & full_mask.to(torch::kBool).unsqueeze(1);  // [B, T, S]
  auto zero = torch::zeros({}, torch::TensorOptions().dtype(dtype));
  // The most negative finite value (not -inf) keeps fully masked padding rows finite.
  // (bf16's lowest, -0x1.fep127, is exact in f32; f32's lowest would round to -inf.)
  double lowest = dtype == torch::kBFloat16 ? -3.3895313892515355e38 : std::numeric_limits<float>::lowest();
  auto neg = torch::full({}, lowest, torch::kFloat32).to(dtype);
  return torch::where(allowed, zero, neg).unsqueeze(1);
}

torch::Tensor repeat_kv(const torch::Tensor& x, int64_t groups) {
  if (groups == 1) return x;
  auto s = x.sizes();  // [B, kvh, S, d]
  return x.unsqueeze(2).expand({s[0], s[1], groups, s[2], s[3]}).reshape({s[0], s[1] * groups, s[2], s[3]});
}

// Scaled dot-product attention with the softmax in f32 (as the HF eager path does).
torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     const torch::Tensor& bias, int64_t groups) {
  double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto scores = torch::matmul(q, repeat_kv(k, groups).transpose(2, 3)) * scale + bias;
  auto probs = torch::softmax(scores, -1, torch::kFloat32).to(q.scalar_type());
  return torch::matmul(probs, repeat_kv(v, groups));  // [B, H, T, d]
}

struct Step {
  int64_t b, t, past;
  torch::Tensor bias;      // [B, 1, T, S]
  torch::Tensor cos, sin;  // [B, T, d] (Llama family)
};

// Appends the new keys/values of `layer` to the cache, returns the full ones.
std::pair<torch::Tensor, torch::Tensor> cached_kv(KVCache* cache, size_t layer, torch::Tensor k,
                                                 torch::Tensor v) {
  if (!cache) return {k, v};
  if (cache->keys.size() <= layer) {
    cache->keys.resize(layer + 1);
    cache->values.resize(layer + 1);
  }
  if (cache->keys[layer].defined()) {
    k = torch::cat({cache->keys[layer], k}, 2);
    v = torch::cat({cache->values[layer], v}, 2);
  }
  cache->keys[layer] = k;
  cache->values[layer] = v;
  return {k, v};
}

torch::Tensor llama_layer(const ModelConfig& c, const WeightMap& w, int64_t i, torch::Tensor h,
                          const Step& st, KVCache* cache) {
  std::string p = "model.layers." + std::to_string(i) + ".";
  int64_t hd = c.dim_per_head(), kvh = c.kv_heads();
  auto x = rms_norm(h, get(w, p + "input_layernorm.weight"), c.rms_norm_eps);
  torch::Tensor q, k, v;
  if (find(w, p + "self_attn.qkv_proj.weight")) {
    auto qkv = linear(x, w, p + "self_attn.qkv_proj").split_with_sizes({c.num_heads * hd, kvh * hd, kvh * hd}, -1);
    q = qkv[0], k = qkv[1], v = qkv[2];
  } else {
    q = linear(x, w, p + "self_attn.q_proj");
    k = linear(x, w, p + "self_attn.k_proj");
    v = linear(x, w, p + "self_attn.v_proj");
  }
  q = q.reshape({st.b, st.t, c.num_heads, hd}).transpose(1, 2);
  k = k.reshape({st.b, st.t, kvh, hd}).transpose(1, 2);
  v = v.reshape({st.b, st.t, kvh, hd}).transpose(1, 2);
  q = apply_rope(q, st.cos, st.sin);
  k = apply_rope(k, st.cos, st.sin);
  auto [kf, vf] = cached_kv(cache, i, k, v);
  auto a = attend(q, kf, vf, st.bias, c.num_heads / kvh);
  a = a.transpose(1, 2).reshape({st.b, st.t, c.num_heads * hd});
  h = h + linear(a, w, p + "self_attn.o_proj");
  x = rms_norm(h, get(w, p + "post_attention_layernorm.weight"), c.rms_norm_eps);
  torch::Tensor gate, up;
  if (find(w, p + "mlp.gate_up_proj.weight")) {
    auto both = linear(x, w, p + "mlp.gate_up_proj").chunk(2, -1);
    gate = both[0], up = both[1];
  } else {
    gate = linear(x, w, p + "mlp.gate_proj");
    up = linear(x, w, p + "mlp.up_proj");
  }
  return h + linear(activation(gate, c.hidden_act) * up, w, p + "mlp.down_proj");
}

torch::Tensor gpt2_layer(const ModelConfig& c, const WeightMap& w, int64_t i, torch::Tensor h,
                         const Step& st, KVCache* cache) {
  std::string p = "h." + std::to_string(i) + ".";
  int64_t hd = c.dim_per_head(), e = c.hidden_size;
  auto x = torch::layer_norm(h, {e}, gpt2(w, p + "ln_1.weight"), gpt2(w, p + "ln_1.bias"), c.layer_norm_eps);
  auto qkv = conv1d(x, w, p + "attn.c_attn").split(e, -1);
  auto heads = [&](const torch::Tensor& t) { return t.view({st.b, st.t, c.num_heads, hd}).transpose(1, 2); };
  auto [kf, vf] = cached_kv(cache, i, heads(qkv[1]), heads(qkv[2]));
  auto a = attend(heads(qkv[0]), kf, vf, st.bias, 1).transpose(1, 2).reshape({st.b, st.t, e});
  h = h + conv1d(a, w, p + "attn.c_proj");
  x = torch::layer_norm(h, {e}, gpt2(w, p + "ln_2.weight"), gpt2(w, p + "ln_2.bias"), c.layer_norm_eps);
  return h + conv1d(activation(conv1d(x, w, p + "mlp.c_fc"), c.hidden_act), w, p + "mlp.c_proj");
}

// Concatenates the tensors `parts` (same trailing shape) along dim 0 into `fused` and
// re-points each part's name at its slice. Skipped when any part is missing.
void fuse_rows(WeightMap& w, const std::vector<std::string>& parts, const std::string& fused) {
  std::vector<torch::Tensor> tensors;
  for (const auto& name : parts) {
    auto* t = find(w, name);
    if (!t) return;
    tensors.push_back(*t);
  }
  auto all = torch::cat(tensors, 0);
  int64_t at = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    int64_t rows = tensors[i].size(0);
    w[parts[i]] = all.narrow(0, at, rows);
    at += rows;
  }
  w[fused] = all;
}

}  // namespace

void fuse_projections(const ModelConfig& c, WeightMap& w) {
  if (c.arch == Architecture::GPT2) return;  // GPT-2 already stores c_attn fused
  torch::NoGradGuard no_grad;
  for (int64_t i = 0; i < c.num_layers; ++i) {
    std::string p = "model.layers." + std::to_string(i) + ".";
    // Biases (Qwen2) are fused with their weights; a layer with only some of the three
    // biases keeps its separate projections, since the fused matmul has one bias or none.
    int biases = 0;
    for (const char* proj : {"q_proj", "k_proj", "v_proj"}) biases += find(w, p + "self_attn." + proj + ".bias") != nullptr;
    if (biases == 0 || biases == 3) {
      for (const char* kind : {".weight", ".bias"})
        fuse_rows(w, {p + "self_attn.q_proj" + kind, p + "self_attn.k_proj" + kind, p + "self_attn.v_proj" + kind},
                  p + "self_attn.qkv_proj" + kind);
    }
    fuse_rows(w, {p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"}, p + "mlp.gate_up_proj.weight");
  }
}

int64_t KVCache::length() const {
  return keys.empty() || !keys[0].defined() ? 0 : keys[0].size(2);
}

const torch::Tensor& output_embedding(const ModelConfig& c, const WeightMap& w) {
  if (auto* t = find(w, "lm_head.weight")) return *t;
  if (c.arch == Architecture::GPT2) return gpt2(w, "wte.weight");
  if (!c.tie_word_embeddings)
    fail(ErrorKind::Input, "model weights: missing tensor 'lm_head.weight' (tie_word_embeddings is false)");
  return get(w, "model.embed_tokens.weight");
}

torch::Tensor forward_hidden(const ModelConfig& c, const WeightMap& w, const torch::Tensor& input_ids,
                             const torch::Tensor& attention_mask, KVCache* cache) {
  if (input_ids.dim() != 2) fail(ErrorKind::Internal, "forward: input_ids must be [B, T]");
  Step st;
  st.b = input_ids.size(0);
  st.t = input_ids.size(1);
  st.past = cache ? cache->length() : 0;
  // The mask over everything attended to: cached tokens then the new ones.
  torch::Tensor mask = attention_mask.defined() ? attention_mask.to(torch::kInt64)
                                                : torch::ones({st.b, st.t}, torch::kInt64);
  if (mask.size(1) == st.t && st.past > 0) {
    auto past_mask = cache->mask.defined() ? cache->mask : torch::ones({st.b, st.past}, torch::kInt64);
    mask = torch::cat({past_mask, mask}, 1);
  }
  if (mask.size(0) != st.b || mask.size(1) != st.past + st.t)
    fail(ErrorKind::Internal, "forward: attention_mask shape does not match input_ids and cache");
  if (cache) cache->mask = mask;
  // Positions count real tokens only, so left padding does not shift them (as HF generate).
  auto positions = (mask.cumsum(1) - 1).masked_fill(mask == 0, 1).narrow(1, st.past, st.t);

  const torch::Tensor& embed = c.arch == Architecture::GPT2 ? gpt2(w, "wte.weight")
                                                            : get(w, "model.embed_tokens.weight");
  auto dtype = embed.scalar_type();
  st.bias = attention_bias(mask, st.past, st.t, c.sliding_window, dtype);
  torch::Tensor h = torch::embedding(embed, input_ids);
  if (c.arch == Architecture::GPT2) {
    h = h + torch::embedding(gpt2(w, "wpe.weight"), positions);
    for (int64_t i = 0; i < c.num_layers; ++i) h = gpt2_layer(c, w, i, h, st, cache);
    return torch::layer_norm(h, {c.hidden_size}, gpt2(w, "ln_f.weight"), gpt2(w, "ln_f.bias"),
                             c.layer_norm_eps);
  }
  auto [cos, sin] = rope_cos_sin(c, positions, dtype);
  st.cos = cos;
  st.sin = sin;
  for (int64_t i = 0; i < c.num_layers; ++i) h = llama_layer(c, w, i, h, st, cache);
  return rms_norm(h, get(w, "model.norm.weight"), c.rms_norm_eps);
}

torch::Tensor forward(const ModelConfig& c, const WeightMap& w, const torch::Tensor& input_ids,
                      const torch::Tensor& attention_mask, KVCache* cache) {
  auto h = forward_hidden(c, w, input_ids, attention_mask, cache);
  return torch::matmul(h, output_embedding(c, w).t()).to(torch::kFloat32);
}

}  // namespace amalgam
