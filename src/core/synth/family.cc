#include "synth/family.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "util/error.h"

namespace amalgam::synth {

namespace {

struct Preset {
  const char* name;
  Family family;
  int64_t hidden, layers, heads, kv_heads, head_dim, intermediate, vocab, max_positions;
  bool tied;
};

// Real checkpoints, copied from their config.json files.
const Preset kPresets[] = {
    {"Llama-3.2-1B", Family::Llama, 2048, 16, 32, 8, 64, 8192, 128256, 131072, true},
    {"Llama-3.2-3B", Family::Llama, 3072, 28, 24, 8, 128, 8192, 128256, 131072, true},
    {"Llama-2-7B", Family::Llama, 4096, 32, 32, 32, 128, 11008, 32000, 4096, false},
    {"Llama-2-13B", Family::Llama, 5120, 40, 40, 40, 128, 13824, 32000, 4096, false},
    {"Mistral-7B-v0.1", Family::Mistral, 4096, 32, 32, 8, 128, 14336, 32000, 32768, false},
    {"Qwen2-0.5B", Family::Qwen2, 896, 24, 14, 2, 64, 4864, 151936, 131072, true},
    {"Qwen2-1.5B", Family::Qwen2, 1536, 28, 12, 2, 128, 8960, 151936, 131072, true},
    {"Qwen2.5-3B", Family::Qwen2, 2048, 36, 16, 2, 128, 11008, 151936, 32768, true},
    {"Qwen2-7B", Family::Qwen2, 3584, 28, 28, 4, 128, 18944, 152064, 131072, false},
    {"gpt2", Family::Gpt2, 768, 12, 12, 12, 64, 3072, 50257, 1024, true},
    {"gpt2-medium", Family::Gpt2, 1024, 24, 16, 16, 64, 4096, 50257, 1024, true},
    {"gpt2-large", Family::Gpt2, 1280, 36, 20, 20, 64, 5120, 50257, 1024, true},
    {"gpt2-xl", Family::Gpt2, 1600, 48, 25, 25, 64, 6400, 50257, 1024, true},
};

// Hidden sizes for scaled shapes and the depth real models of that width tend to have.
const std::pair<int64_t, int64_t> kLadder[] = {
    {64, 2},     {128, 4},    {192, 4},    {256, 4},    {384, 6},    {512, 8},
    {640, 10},   {768, 12},   {1024, 16},  {1280, 20},  {1536, 24},  {2048, 24},
    {2560, 28},  {3072, 28},  {4096, 32},  {5120, 40},  {6144, 48},  {8192, 80},
};

int64_t round_up(double x, int64_t multiple) {
  return static_cast<int64_t>(std::ceil(x / multiple)) * multiple;
}

int64_t real_vocab(Family f) {
  switch (f) {
    case Family::Llama: case Family::Mistral: return 32000;
    case Family::Qwen2: return 151936;
    case Family::Gpt2: return 50257;
  }
  return 32000;
}

// Largest divisor of `heads` not above `limit` (at least 1): grouped-query attention.
int64_t kv_heads_for(int64_t heads, double limit) {
  for (int64_t d = std::max<int64_t>(1, static_cast<int64_t>(limit)); d > 1; --d)
    if (heads % d == 0) return d;
  return 1;
}

ModelShape scaled_shape(Family family, int64_t hidden, uint64_t target) {
  ModelShape s;
  s.family = family;
  s.hidden = hidden;
  s.head_dim = hidden < 256 ? 32 : (hidden <= 2048 ? 64 : 128);
  s.heads = hidden / s.head_dim;
  switch (family) {
    case Family::Llama:
      s.kv_heads = s.heads;
      s.intermediate = round_up(8.0 * hidden / 3.0, hidden >= 1024 ? 256 : 64);
      s.max_positions = 4096;
      break;
    case Family::Mistral:
      s.kv_heads = kv_heads_for(s.heads, s.heads / 4.0);
      s.intermediate = round_up(3.5 * hidden, 64);
      s.max_positions = 32768;
      break;
    case Family::Qwen2:
      s.kv_heads = kv_heads_for(s.heads, s.heads / 6.0);
      s.intermediate = round_up(5.5 * hidden, 64);
      s.max_positions = 32768;
      break;
    case Family::Gpt2:
      s.kv_heads = s.heads;
      s.intermediate = 4 * hidden;
      s.max_positions = hidden * 1024.0 > 0.1 * target ? 256 : 1024;
      break;
  }
  s.tied = family == Family::Gpt2 || (family == Family::Qwen2 && target < 5000000000ULL);
  s.vocab = real_vocab(family);
  s.layers = 1;
  return s;
}

}  // namespace

Family parse_family(const std::string& name) {
  std::string n = name;
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  if (n == "llama") return Family::Llama;
  if (n == "mistral") return Family::Mistral;
  if (n == "qwen2") return Family::Qwen2;
  if (n == "gpt2") return Family::Gpt2;
  fail(ErrorKind::Usage, "unknown model family '{}' (expected llama, mistral, qwen2 or gpt2)", name);
}

std::string family_name(Family f) {
  switch (f) {
    case Family::Llama: return "llama";
    case Family::Mistral: return "mistral";
    case Family::Qwen2: return "qwen2";
    case Family::Gpt2: return "gpt2";
  }
  return "?";
}

uint64_t TensorSpec::numel() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

uint64_t parse_param_count(const std::string& text) {
  size_t pos = 0;
  double value = 0;
  try {
    value = std::stod(text, &pos);
  } catch (const std::exception&) {
    fail(ErrorKind::Usage, "bad size '{}' (expected e.g. 1M, 10M, 0.5B, 3B)", text);
  }
  std::string suffix = text.substr(pos);
  double scale = 1;
  if (suffix == "K" || suffix == "k") scale = 1e3;
  else if (suffix == "M" || suffix == "m") scale = 1e6;
  else if (suffix == "B" || suffix == "b" || suffix == "G" || suffix == "g") scale = 1e9;
  else if (!suffix.empty())
    fail(ErrorKind::Usage, "bad size '{}' (expected a number with K, M or B, e.g. 0.5B)", text);
  double n = value * scale;
  if (!(n >= 1) || n > 1e12) fail(ErrorKind::Usage, "size '{}' out of range (1 .. 1000B)", text);
  return static_cast<uint64_t>(std::llround(n));
}

uint64_t parameter_count(const ModelShape& shape) {
  uint64_t n = 0;
  for (const auto& t : tensor_specs(shape)) n += t.numel();
  return n;
}

ModelShape shape_for_size(Family family, uint64_t params) {
  // A real model within 15% wins: its shapes are what people actually merge.
  const Preset* best_preset = nullptr;
  double best_err = 0.15;
  for (const auto& p : kPresets) {
    if (p.family != family) continue;
    ModelShape s{p.family, p.name, p.hidden, p.layers, p.heads, p.kv_heads, p.head_dim,
                 p.intermediate, p.vocab, p.max_positions, p.tied};
    double err = std::abs(std::log(static_cast<double>(parameter_count(s)) / params));
    if (err < best_err) best_err = err, best_preset = &p;
  }
  if (best_preset) {
    const Preset& p = *best_preset;
    return ModelShape{p.family, p.name, p.hidden, p.layers, p.heads, p.kv_heads, p.head_dim,
                      p.intermediate, p.vocab, p.max_positions, p.tied};
  }

  // Otherwise: the width whose natural depth fits the budget best, then the vocabulary
  // (shrunk only for small models, where a full one would be nearly all embedding)
  // fills the remainder so the count lands close to the request.
  ModelShape best;
  double best_cost = std::numeric_limits<double>::infinity();
  for (auto [hidden, preferred_layers] : kLadder) {
    ModelShape s = scaled_shape(family, hidden, params);
    ModelShape zero = s;
    zero.layers = 0;
    uint64_t per_layer = parameter_count(s) - parameter_count(zero);
    const uint64_t emb_factor = s.tied ? 1 : 2;
    // Embeddings take at most ~40% of a scaled model.
    while (s.vocab > 256 && static_cast<double>(s.vocab * hidden * emb_factor) > 0.4 * params)
      s.vocab = std::max<int64_t>(256, s.vocab / 2);
    zero.vocab = s.vocab;
    uint64_t fixed = parameter_count(zero);
    if (fixed >= params) continue;
    double layers_f = static_cast<double>(params - fixed) / per_layer;
    if (layers_f < 0.5) continue;
    double cost = std::abs(std::log(layers_f / preferred_layers));
    if (cost < best_cost) {
      best_cost = cost;
      s.layers = std::max<int64_t>(1, std::llround(layers_f));
      if (s.vocab != real_vocab(family)) {
        zero.layers = s.layers;
        zero.vocab = 0;
        uint64_t rest = parameter_count(zero);
        double v = rest < params ? static_cast<double>(params - rest) / (hidden * emb_factor) : 0;
        s.vocab = std::clamp<int64_t>(std::llround(v / 64) * 64, 256, real_vocab(family));
      }
      best = s;
    }
  }
  if (!std::isfinite(best_cost)) {
    ModelShape smallest = scaled_shape(family, kLadder[0].first, params);
    smallest.vocab = 256;
    fail(ErrorKind::Usage, "size {} is too small for a {} model (smallest: {} parameters)", params,
         family_name(family), parameter_count(smallest));
  }
  return best;
}

std::vector<TensorSpec> tensor_specs(const ModelShape& s) {
  std::vector<TensorSpec> t;
  const int64_t h = s.hidden;
  if (s.family == Family::Gpt2) {
    t.push_back({"transformer.wte.weight", {s.vocab, h}, TensorRole::Embedding});
    t.push_back({"transformer.wpe.weight", {s.max_positions, h}, TensorRole::Embedding});
    for (int64_t l = 0; l < s.layers; ++l) {
      const std::string p = "transformer.h." + std::to_string(l) + ".";
      t.push_back({p + "ln_1.weight", {h}, TensorRole::Norm});
      t.push_back({p + "ln_1.bias", {h}, TensorRole::NormBias});
      // Conv1D stores [in, out], the transpose of nn.Linear.
      t.push_back({p + "attn.c_attn.weight", {h, 3 * h}, TensorRole::Matrix});
      t.push_back({p + "attn.c_attn.bias", {3 * h}, TensorRole::Bias});
      t.push_back({p + "attn.c_proj.weight", {h, h}, TensorRole::Matrix});
      t.push_back({p + "attn.c_proj.bias", {h}, TensorRole::Bias});
      t.push_back({p + "ln_2.weight", {h}, TensorRole::Norm});
      t.push_back({p + "ln_2.bias", {h}, TensorRole::NormBias});
      t.push_back({p + "mlp.c_fc.weight", {h, s.intermediate}, TensorRole::Matrix});
      t.push_back({p + "mlp.c_fc.bias", {s.intermediate}, TensorRole::Bias});
      t.push_back({p + "mlp.c_proj.weight", {s.intermediate, h}, TensorRole::Matrix});
      t.push_back({p + "mlp.c_proj.bias", {h}, TensorRole::Bias});
    }
    t.push_back({"transformer.ln_f.weight", {h}, TensorRole::Norm});
    t.push_back({"transformer.ln_f.bias", {h}, TensorRole::NormBias});
    return t;
  }
  const int64_t q = s.heads * s.head_dim, kv = s.kv_heads * s.head_dim;
  const bool qkv_bias = s.family == Family::Qwen2;
  t.push_back({"model.embed_tokens.weight", {s.vocab, h}, TensorRole::Embedding});
  for (int64_t l = 0; l < s.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    t.push_back({p + "input_layernorm.weight", {h}, TensorRole::Norm});
    t.push_back({p + "self_attn.q_proj.weight", {q, h}, TensorRole::Matrix});
    if (qkv_bias) t.push_back({p + "self_attn.q_proj.bias", {q}, TensorRole::Bias});
    t.push_back({p + "self_attn.k_proj.weight", {kv, h}, TensorRole::Matrix});
    if (qkv_bias) t.push_back({p + "self_attn.k_proj.bias", {kv}, TensorRole::Bias});
    t.push_back({p + "self_attn.v_proj.weight", {kv, h}, TensorRole::Matrix});
    if (qkv_bias) t.push_back({p + "self_attn.v_proj.bias", {kv}, TensorRole::Bias});
    t.push_back({p + "self_attn.o_proj.weight", {h, q}, TensorRole::Matrix});
    t.push_back({p + "post_attention_layernorm.weight", {h}, TensorRole::Norm});
    t.push_back({p + "mlp.gate_proj.weight", {s.intermediate, h}, TensorRole::Matrix});
    t.push_back({p + "mlp.up_proj.weight", {s.intermediate, h}, TensorRole::Matrix});
    t.push_back({p + "mlp.down_proj.weight", {h, s.intermediate}, TensorRole::Matrix});
  }
  t.push_back({"model.norm.weight", {h}, TensorRole::Norm});
  if (!s.tied) t.push_back({"lm_head.weight", {s.vocab, h}, TensorRole::Embedding});
  return t;
}

}  // namespace amalgam::synth
