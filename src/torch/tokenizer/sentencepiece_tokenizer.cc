// tokenizer.model through libsentencepiece (Llama-2/Mistral-era checkpoints). BOS is
// added by default (the Llama convention) unless tokenizer_config.json says otherwise.
#include <fstream>
#include <sstream>

#include "core/util/error.h"
#include "core/util/progress.h"
#include "torch/tokenizer/hf_tokenizer.h"
#include "torch/tokenizer/unicode.h"

#ifdef AMALGAM_HAVE_SENTENCEPIECE
#include <sentencepiece_processor.h>
#endif

namespace amalgam {

#ifdef AMALGAM_HAVE_SENTENCEPIECE

namespace {

class SentencePieceTokenizer : public Tokenizer {
 public:
  SentencePieceTokenizer(const std::string& path, const TokenizerConfig& config) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(ErrorKind::Io, "{}: cannot open", path);
    std::stringstream buf;
    buf << in.rdbuf();
    const auto status = sp_.LoadFromSerializedProto(buf.str());
    if (!status.ok()) fail(ErrorKind::Input, "{}: not a SentencePiece model: {}", path, status.ToString());
    auto resolve = [&](const std::optional<std::string>& tok, int fallback) -> std::optional<int32_t> {
      if (tok) return token_to_id(*tok);
      if (fallback >= 0) return fallback;
      return std::nullopt;
    };
    bos_ = resolve(config.bos_token, sp_.bos_id());
    eos_ = resolve(config.eos_token, sp_.eos_id());
    pad_ = resolve(config.pad_token, sp_.pad_id());
    add_bos_ = config.add_bos_token.value_or(true);
    add_eos_ = config.add_eos_token.value_or(false);
  }

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const override {
    std::vector<int> pieces;
    const auto status = sp_.Encode(sanitize_utf8(text), &pieces);
    if (!status.ok()) fail(ErrorKind::Internal, "sentencepiece encode failed: {}", status.ToString());
    std::vector<int32_t> ids;
    ids.reserve(pieces.size() + 2);
    if (add_special_tokens && add_bos_ && bos_) ids.push_back(*bos_);
    ids.insert(ids.end(), pieces.begin(), pieces.end());
    if (add_special_tokens && add_eos_ && eos_) ids.push_back(*eos_);
    return ids;
  }

  // SentencePiece drops control tokens when decoding; like transformers' slow
  // tokenizer we print their text unless skip_special_tokens.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const override {
    std::string out;
    std::vector<int> run;
    auto flush = [&] {
      if (run.empty()) return;
      std::string s;
      const auto status = sp_.Decode(run, &s);
      if (!status.ok()) fail(ErrorKind::Internal, "sentencepiece decode failed: {}", status.ToString());
      out += s;
      run.clear();
    };
    const int n = sp_.GetPieceSize();
    for (int32_t id : ids) {
      if (id < 0 || id >= n) continue;
      if (sp_.IsControl(id)) {
        flush();
        if (!skip_special_tokens) out += sp_.IdToPiece(id);
        continue;
      }
      run.push_back(id);
    }
    flush();
    return out;
  }

  size_t vocab_size() const override { return static_cast<size_t>(sp_.GetPieceSize()); }
  std::optional<int32_t> token_to_id(std::string_view token) const override {
    const int id = sp_.PieceToId(std::string(token));
    if (id < 0 || sp_.IdToPiece(id) != token) return std::nullopt;
    return id;
  }
  std::optional<std::string> id_to_token(int32_t id) const override {
    if (id < 0 || id >= sp_.GetPieceSize()) return std::nullopt;
    return sp_.IdToPiece(id);
  }
  std::optional<int32_t> bos_id() const override { return bos_; }
  std::optional<int32_t> eos_id() const override { return eos_; }
  std::optional<int32_t> pad_id() const override { return pad_; }

 private:
  sentencepiece::SentencePieceProcessor sp_;
  std::optional<int32_t> bos_, eos_, pad_;
  bool add_bos_ = true, add_eos_ = false;
};

}  // namespace

std::unique_ptr<Tokenizer> load_sentencepiece_tokenizer(const std::string& model_path, const TokenizerConfig& config) {
  try {
    return std::make_unique<SentencePieceTokenizer>(model_path, config);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    // libsentencepiece's bundled protobuf refuses the libprotobuf that libtorch loaded
    // (see docs/tokenizers.md): read the model ourselves.
    report_warning(fmt::format("{}: libsentencepiece unusable here ({}); using amalgam's own reader", model_path,
                               std::string(e.what()).substr(0, 80)));
    return load_sentencepiece_native(model_path, config);
  }
}

#else

std::unique_ptr<Tokenizer> load_sentencepiece_tokenizer(const std::string& model_path, const TokenizerConfig& config) {
  return load_sentencepiece_native(model_path, config);
}

#endif

}  // namespace amalgam
