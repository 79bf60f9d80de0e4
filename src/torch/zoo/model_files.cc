#include "torch/zoo/model_files.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "io/safetensors_writer.h"
#include "util/error.h"

namespace amalgam::zoo {
namespace {

void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream os(path, std::ios::binary | std::ios::trunc);
  os << text;
  os.close();
  if (!os) fail(ErrorKind::Io, "{}: write failed", path.string());
}

// GPT-2's bytes_to_unicode() restricted to bytes 0..127: printable ASCII maps to itself,
// the others to U+0100 + their rank among the non-printable bytes.
std::string byte_level_symbol(int byte) {
  int code = byte;
  if (byte < '!' ) code = 256 + byte;        // 0..32 -> U+0100..U+0120
  else if (byte == 127) code = 256 + 33;     // DEL -> U+0121
  std::string s;
  if (code < 128) {
    s.push_back(static_cast<char>(code));
  } else {
    s.push_back(static_cast<char>(0xC0 | (code >> 6)));
    s.push_back(static_cast<char>(0x80 | (code & 0x3F)));
  }
  return s;
}

}  // namespace

nlohmann::json ModelShape::to_json() const {
  return {{"hidden", hidden}, {"layers", layers}, {"heads", heads},
          {"intermediate", intermediate}, {"context", context}};
}

nlohmann::json llama_config_json(const ModelShape& s) {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"model_type", "llama"},
          {"vocab_size", kZooVocab},
          {"hidden_size", s.hidden},
          {"intermediate_size", s.intermediate},
          {"num_hidden_layers", s.layers},
          {"num_attention_heads", s.heads},
          {"num_key_value_heads", s.heads},
          {"max_position_embeddings", s.context},
          {"rope_theta", 10000.0},
          {"rms_norm_eps", 1e-6},
          {"hidden_act", "silu"},
          {"tie_word_embeddings", false},
          {"attention_bias", false},
          {"bos_token_id", nullptr},
          {"eos_token_id", kNewlineId},
          {"pad_token_id", 0},
          {"torch_dtype", "float32"},
          {"transformers_version", "4.40.0"}};
}

ModelConfig model_config(const ModelShape& shape) {
  return ModelConfig::from_json(llama_config_json(shape), "zoo model");
}

std::string byte_tokenizer_json() {
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  for (int b = 0; b < kZooVocab; ++b) vocab[byte_level_symbol(b)] = b;
  nlohmann::ordered_json tok = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", nlohmann::ordered_json::array()},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
        {"use_regex", true}}},
      {"post_processor", nullptr},
      {"decoder",
       {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true},
        {"use_regex", true}}},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
        {"fuse_unk", false}, {"byte_fallback", false}, {"vocab", vocab},
        {"merges", nlohmann::ordered_json::array()}}}};
  return tok.dump(2);
}

WeightMap init_weights(const ModelShape& s) {
  WeightMap w;
  // PyTorch's nn.Linear default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), not GPT-2's N(0, 0.02):
  // at d = 128 the 0.02 scale starts attention so flat that the copy skills the tasks
  // need are learned ~3x slower (measured: uppercase from scratch at d = 64, loss 1.46 vs
  // 0.50 after 100 steps), which left the tiny experts far below ZOO.md's prototype.
  auto normal = [](std::vector<int64_t> shape) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(shape.back()));
    return (torch::rand(shape) * 2 - 1) * bound;
  };
  const int64_t d = s.hidden, ff = s.intermediate;
  w["model.embed_tokens.weight"] = normal({kZooVocab, d});
  for (int64_t l = 0; l < s.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "o_proj"})
      w[p + "self_attn." + proj + ".weight"] = normal({d, d});
    w[p + "mlp.gate_proj.weight"] = normal({ff, d});
    w[p + "mlp.up_proj.weight"] = normal({ff, d});
    w[p + "mlp.down_proj.weight"] = normal({d, ff});
    w[p + "input_layernorm.weight"] = torch::ones({d});
    w[p + "post_attention_layernorm.weight"] = torch::ones({d});
  }
  w["model.norm.weight"] = torch::ones({d});
  w["lm_head.weight"] = normal({kZooVocab, d});
  return w;
}

std::vector<int64_t> encode_bytes(const std::string& text) {
  std::vector<int64_t> ids;
  ids.reserve(text.size());
  for (unsigned char c : text) ids.push_back(c < kZooVocab ? c : '?');
  return ids;
}

std::string decode_bytes(const std::vector<int64_t>& ids) {
  std::string s;
  for (int64_t id : ids) s.push_back(id >= 0 && id < kZooVocab ? static_cast<char>(id) : '?');
  return s;
}

void write_model_dir(const std::string& dir, const ModelShape& shape, const WeightMap& weights,
                     const std::vector<std::pair<std::string, std::string>>& extra_files) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail(ErrorKind::Io, "{}: cannot create directory: {}", dir, ec.message());
  // Sorted names: the same bytes for the same weights.
  std::map<std::string, torch::Tensor> sorted;
  for (const auto& [name, t] : weights) sorted[name] = t.detach().to(torch::kFloat32).contiguous();
  std::vector<OutputTensor> decl;
  for (const auto& [name, t] : sorted) decl.push_back({name, DType::F32, t.sizes().vec()});
  ShardedWriter writer(dir, decl, 5000000000ULL);
  size_t i = 0;
  for (const auto& [name, t] : sorted)
    writer.write(i++, 0, t.data_ptr<float>(), static_cast<size_t>(t.numel()) * sizeof(float));
  writer.finish();
  const fs::path p(dir);
  write_text(p / "config.json", llama_config_json(shape).dump(2) + "\n");
  write_text(p / "generation_config.json",
             nlohmann::json{{"eos_token_id", kNewlineId}, {"pad_token_id", 0},
                            {"do_sample", false}, {"max_new_tokens", 16}}
                     .dump(2) + "\n");
  write_text(p / "tokenizer.json", byte_tokenizer_json() + "\n");
  write_text(p / "tokenizer_config.json",
             nlohmann::json{{"tokenizer_class", "PreTrainedTokenizerFast"},
                            {"add_bos_token", false}, {"add_eos_token", false},
                            {"model_max_length", shape.context},
                            {"clean_up_tokenization_spaces", false}}
                     .dump(2) + "\n");
  for (const auto& [name, text] : extra_files) write_text(p / name, text);
}

}  // namespace amalgam::zoo
