// The stages of a Hugging Face tokenizer.json pipeline other than the model:
// normalizers (text -> text), pre-tokenizers (pieces -> pieces), decoders
// (tokens -> text pieces), built from their JSON. We implement the ones the Llama,
// Mistral, Qwen2 and GPT-2 families use; any other type is an Error(Input) that names
// the file and the type, never a silent mis-tokenization.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace amalgam {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual std::string normalize(std::string text) const = 0;
};

// A pre-token: `at_start` is true when it begins at offset 0 of the original text
// (what Metaspace's prepend_scheme "first" looks at).
struct Piece {
  std::string text;
  bool at_start = false;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void pre_tokenize(std::vector<Piece>& pieces) const = 0;
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Decoders in Hugging Face work on the list of token strings ("decode_chain").
  virtual std::vector<std::string> decode_chain(std::vector<std::string> tokens) const = 0;
};

// `file` only serves error messages. A JSON null gives nullptr.
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j, const std::string& file);
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j, const std::string& file);
std::unique_ptr<Decoder> make_decoder(const nlohmann::json& j, const std::string& file);

// GPT-2's reversible byte <-> printable character map (ByteLevel).
const std::string& byte_to_char(unsigned char b);  // the UTF-8 of the character for byte b
// The byte a ByteLevel character stands for, or -1.
int char_to_byte(uint32_t cp);

}  // namespace amalgam
