// Text <-> token ids for the model families amalgam evaluates: Hugging Face
// tokenizer.json (BPE with the byte-level pre-tokenizer of GPT-2/Llama-3/Qwen2, and
// Metaspace/SentencePiece-style BPE with byte fallback of Llama-2/Mistral; added and
// special tokens; their normalizers and decoders), or tokenizer.model through
// libsentencepiece. No libtorch here. Errors: Error(Input) naming the file.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace amalgam {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // tokenizer.json if present, else tokenizer.model; reads tokenizer_config.json for
  // bos/eos and add_bos_token. Throws Error(Input) if the directory has neither.
  static std::unique_ptr<Tokenizer> from_dir(const std::string& model_dir);
  static std::unique_ptr<Tokenizer> from_json_file(const std::string& tokenizer_json);

  // add_special_tokens: the post-processor's / config's BOS (and EOS when configured).
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const = 0;
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const = 0;
  virtual size_t vocab_size() const = 0;  // including added tokens
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  virtual std::optional<std::string> id_to_token(int32_t id) const = 0;
  virtual std::optional<int32_t> bos_id() const = 0;
  virtual std::optional<int32_t> eos_id() const = 0;
  virtual std::optional<int32_t> pad_id() const = 0;
};

}  // namespace amalgam
