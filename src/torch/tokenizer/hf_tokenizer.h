// Tokenizer for a Hugging Face tokenizer.json with a BPE model (see tokenizer.h), and
// the tokenizer_config.json settings that change it. Encoding follows Rust tokenizers:
// added tokens are split out of the raw text first (then out of the normalized text for
// `normalized` ones), the rest is normalized, pre-tokenized and merged, and the
// post-processor adds BOS/EOS. Input that is not valid UTF-8 is first repaired by
// replacing each invalid sequence with U+FFFD, as JavaScript's TextDecoder does.
#pragma once
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "torch/tokenizer/tokenizer.h"

namespace amalgam {

// What tokenizer_config.json says (all optional).
struct TokenizerConfig {
  std::optional<std::string> bos_token, eos_token, pad_token;
  std::optional<bool> add_bos_token, add_eos_token;
};
// Reads `path`; a missing file gives an empty config, a malformed one Error(Input).
TokenizerConfig read_tokenizer_config(const std::string& path);

// `file` names the source in error messages.
std::unique_ptr<Tokenizer> make_hf_tokenizer(const nlohmann::json& tokenizer_json, const TokenizerConfig& config,
                                             const std::string& file);
std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::string& tokenizer_json_path, const TokenizerConfig& config);
// tokenizer.model through libsentencepiece, or, when built without it, through
// load_sentencepiece_native.
std::unique_ptr<Tokenizer> load_sentencepiece_tokenizer(const std::string& model_path, const TokenizerConfig& config);
// tokenizer.model of a BPE model with identity normalization (Llama-2, Mistral) read
// without libsentencepiece, as an equivalent tokenizer.json pipeline.
std::unique_ptr<Tokenizer> load_sentencepiece_native(const std::string& model_path, const TokenizerConfig& config);

}  // namespace amalgam
