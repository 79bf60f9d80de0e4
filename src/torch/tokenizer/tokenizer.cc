// Tokenizer factories: tokenizer.json first, tokenizer.model otherwise.
#include "torch/tokenizer/tokenizer.h"

#include <filesystem>

#include "core/util/error.h"
#include "torch/tokenizer/hf_tokenizer.h"

namespace amalgam {

std::unique_ptr<Tokenizer> Tokenizer::from_dir(const std::string& model_dir) {
  namespace fs = std::filesystem;
  const fs::path dir(model_dir);
  const TokenizerConfig config = read_tokenizer_config((dir / "tokenizer_config.json").string());
  if (fs::exists(dir / "tokenizer.json")) return load_hf_tokenizer((dir / "tokenizer.json").string(), config);
  if (fs::exists(dir / "tokenizer.model")) return load_sentencepiece_tokenizer((dir / "tokenizer.model").string(), config);
  fail(ErrorKind::Input, "{}: no tokenizer.json or tokenizer.model", model_dir);
}

std::unique_ptr<Tokenizer> Tokenizer::from_json_file(const std::string& tokenizer_json) {
  return load_hf_tokenizer(tokenizer_json, TokenizerConfig{});
}

}  // namespace amalgam
