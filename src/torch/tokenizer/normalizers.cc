// Normalizers of tokenizer.json: Sequence, Prepend, Replace (string patterns), Strip,
// NFC. See pipeline.h.
#include <nlohmann/json.hpp>

#include "core/util/error.h"
#include "torch/tokenizer/nfc.h"
#include "torch/tokenizer/pipeline.h"
#include "torch/tokenizer/unicode.h"

namespace amalgam {

namespace {

using nlohmann::json;

std::string replace_all(std::string text, std::string_view from, std::string_view to) {
  if (from.empty()) return text;
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  for (size_t hit; (hit = text.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(text, pos, hit - pos);
    out.append(to);
  }
  out.append(text, pos, std::string::npos);
  return out;
}

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts) : parts_(std::move(parts)) {}
  std::string normalize(std::string text) const override {
    for (const auto& p : parts_) text = p->normalize(std::move(text));
    return text;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  std::string normalize(std::string text) const override {
    return text.empty() ? text : prefix_ + text;  // HF leaves an empty string alone
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(std::string from, std::string to) : from_(std::move(from)), to_(std::move(to)) {}
  std::string normalize(std::string text) const override { return replace_all(std::move(text), from_, to_); }

 private:
  std::string from_, to_;
};

class StripNormalizer : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  std::string normalize(std::string text) const override {
    size_t b = 0, e = text.size();
    uint32_t cp;
    if (left_) {
      for (size_t n; b < e && (n = decode_utf8(text, b, &cp)) && is_whitespace(cp);) b += n;
    }
    if (right_) {
      while (e > b) {
        size_t s = e - 1;
        while (s > b && (static_cast<unsigned char>(text[s]) & 0xC0) == 0x80) --s;
        decode_utf8(text, s, &cp);
        if (!is_whitespace(cp)) break;
        e = s;
      }
    }
    return text.substr(b, e - b);
  }

 private:
  bool left_, right_;
};

class NfcNormalizer : public Normalizer {
 public:
  std::string normalize(std::string text) const override { return to_nfc(text); }
};

std::string string_pattern(const json& j, const std::string& file, const char* what) {
  const json& p = j.at("pattern");
  if (p.contains("String")) return p.at("String").get<std::string>();
  fail(ErrorKind::Input, "{}: {} with a regex pattern is not supported: {}", file, what, p.dump());
}

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const json& j, const std::string& file) {
  if (j.is_null()) return nullptr;
  const std::string type = j.at("type").get<std::string>();
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (const auto& n : j.at("normalizers")) {
      if (auto p = make_normalizer(n, file)) parts.push_back(std::move(p));
    }
    return std::make_unique<SequenceNormalizer>(std::move(parts));
  }
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(j.at("prepend").get<std::string>());
  if (type == "Replace") {
    return std::make_unique<ReplaceNormalizer>(string_pattern(j, file, "Replace normalizer"),
                                               j.at("content").get<std::string>());
  }
  if (type == "Strip") {
    return std::make_unique<StripNormalizer>(j.value("strip_left", true), j.value("strip_right", true));
  }
  if (type == "NFC") return std::make_unique<NfcNormalizer>();
  fail(ErrorKind::Input, "{}: unsupported normalizer type '{}'", file, type);
}

}  // namespace amalgam
