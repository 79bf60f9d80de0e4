// Pre-tokenizers of tokenizer.json: ByteLevel, Split, Metaspace, Digits,
// WhitespaceSplit, Sequence; and GPT-2's byte <-> character map. See pipeline.h.
#include <algorithm>
#include <array>

#include <nlohmann/json.hpp>

#include "core/util/error.h"
#include "torch/tokenizer/pipeline.h"
#include "torch/tokenizer/split_patterns.h"
#include "torch/tokenizer/unicode.h"

namespace amalgam {

namespace {

using nlohmann::json;

struct ByteMaps {
  std::array<std::string, 256> to_char;
  std::array<int, 324> to_byte;  // the characters are all below U+0144
  ByteMaps() {
    to_byte.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const uint32_t cp = printable ? b : 256 + n++;
      append_utf8(to_char[b], cp);
      to_byte[cp] = b;
    }
  }
};

const ByteMaps& byte_maps() {
  static const ByteMaps maps;
  return maps;
}

// How the delimiters found by a split are kept (SplitDelimiterBehavior).
enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

struct Segment {
  size_t begin, end;
  bool delimiter;
};

// Cuts `piece` along `segments` (which cover it in order) as `behavior` says, with
// the semantics of Rust tokenizers' NormalizedString::split.
void emit_split(const Piece& piece, const std::vector<Segment>& segments, Behavior behavior,
                std::vector<Piece>& out) {
  std::vector<Segment> kept;
  bool previous = false;  // was the previous segment (in iteration order) a delimiter?
  switch (behavior) {
    case Behavior::Removed:
      for (const auto& s : segments) {
        if (!s.delimiter) kept.push_back(s);
      }
      break;
    case Behavior::Isolated: kept = segments; break;
    case Behavior::Contiguous:
      for (const auto& s : segments) {
        if (s.delimiter == previous && !kept.empty()) {
          kept.back().end = s.end;
        } else {
          kept.push_back(s);
        }
        previous = s.delimiter;
      }
      break;
    case Behavior::MergedWithPrevious:
      for (const auto& s : segments) {
        if (s.delimiter && !previous && !kept.empty()) {
          kept.back().end = s.end;
        } else {
          kept.push_back(s);
        }
        previous = s.delimiter;
      }
      break;
    case Behavior::MergedWithNext:
      for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
        if (it->delimiter && !previous && !kept.empty()) {
          kept.back().begin = it->begin;
        } else {
          kept.push_back(*it);
        }
        previous = it->delimiter;
      }
      std::reverse(kept.begin(), kept.end());
      break;
  }
  for (const auto& s : kept) {
    if (s.end > s.begin) out.push_back({piece.text.substr(s.begin, s.end - s.begin), piece.at_start && s.begin == 0});
  }
}

// Matches of `pattern` in `text` as alternating segments covering all of it.
std::vector<Segment> segments_of(const std::vector<ByteRange>& matches, size_t size, bool invert) {
  std::vector<Segment> segs;
  size_t pos = 0;
  for (const auto& m : matches) {
    if (m.begin > pos) segs.push_back({pos, m.begin, invert});
    segs.push_back({m.begin, m.end, !invert});
    pos = m.end;
  }
  if (pos < size) segs.push_back({pos, size, invert});
  return segs;
}

std::vector<ByteRange> find_string(std::string_view text, std::string_view needle) {
  std::vector<ByteRange> out;
  if (needle.empty()) return out;
  for (size_t pos = 0; (pos = text.find(needle, pos)) != std::string_view::npos; pos += needle.size()) {
    out.push_back({pos, pos + needle.size()});
  }
  return out;
}

class SequencePre : public PreTokenizer {
 public:
  explicit SequencePre(std::vector<std::unique_ptr<PreTokenizer>> parts) : parts_(std::move(parts)) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& p : parts_) p->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

class ByteLevelPre : public PreTokenizer {
 public:
  ByteLevelPre(bool add_prefix_space, bool use_regex) : add_prefix_space_(add_prefix_space), use_regex_(use_regex) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    out.reserve(pieces.size());
    for (auto& p : pieces) {
      if (add_prefix_space_ && (p.text.empty() || p.text[0] != ' ')) p.text = " " + p.text;
      if (use_regex_) {
        const auto m = find_matches(SplitPattern::Gpt2, p.text);
        emit_split(p, segments_of(m, p.text.size(), false), Behavior::Isolated, out);
      } else {
        out.push_back(std::move(p));
      }
    }
    const auto& maps = byte_maps();
    for (auto& p : out) {
      std::string mapped;
      mapped.reserve(p.text.size() * 2);
      for (unsigned char c : p.text) mapped += maps.to_char[c];
      p.text = std::move(mapped);
    }
    pieces = std::move(out);
  }

 private:
  bool add_prefix_space_, use_regex_;
};

class SplitPre : public PreTokenizer {
 public:
  SplitPre(std::optional<SplitPattern> regex, std::string literal, Behavior behavior, bool invert)
      : regex_(regex), literal_(std::move(literal)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    for (const auto& p : pieces) {
      const auto m = regex_ ? find_matches(*regex_, p.text) : find_string(p.text, literal_);
      emit_split(p, segments_of(m, p.text.size(), invert_), behavior_, out);
    }
    pieces = std::move(out);
  }

 private:
  std::optional<SplitPattern> regex_;
  std::string literal_;
  Behavior behavior_;
  bool invert_;
};

enum class Prepend { Always, First, Never };

class MetaspacePre : public PreTokenizer {
 public:
  MetaspacePre(std::string replacement, Prepend prepend, bool split)
      : replacement_(std::move(replacement)), prepend_(prepend), split_(split) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    for (auto& p : pieces) {
      std::string t;
      t.reserve(p.text.size() + 8);
      for (char c : p.text) {
        if (c == ' ') {
          t += replacement_;
        } else {
          t += c;
        }
      }
      const bool starts = t.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts && (prepend_ == Prepend::Always || (prepend_ == Prepend::First && p.at_start))) {
        t = replacement_ + t;
      }
      Piece q{std::move(t), p.at_start};
      if (split_) {
        emit_split(q, segments_of(find_string(q.text, replacement_), q.text.size(), false),
                   Behavior::MergedWithNext, out);
      } else {
        out.push_back(std::move(q));
      }
    }
    pieces = std::move(out);
  }

 private:
  std::string replacement_;
  Prepend prepend_;
  bool split_;
};

// Digits (runs of \p{N}, or each one alone) and WhitespaceSplit (\s runs removed).
class ClassSplitPre : public PreTokenizer {
 public:
  enum Kind { DigitRuns, SingleDigits, Whitespace };
  explicit ClassSplitPre(Kind kind) : kind_(kind) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    for (const auto& p : pieces) {
      std::vector<Segment> segs;
      const std::string& s = p.text;
      for (size_t pos = 0; pos < s.size();) {
        uint32_t cp;
        size_t n = decode_utf8(s, pos, &cp);
        const bool hit = kind_ == Whitespace ? is_whitespace(cp) : is_number(cp);
        const bool joins = !segs.empty() && segs.back().delimiter == hit && segs.back().end == pos &&
                           !(hit && kind_ == SingleDigits);
        if (joins) {
          segs.back().end = pos + n;
        } else {
          segs.push_back({pos, pos + n, hit});
        }
        pos += n;
      }
      emit_split(p, segs, kind_ == Whitespace ? Behavior::Removed : Behavior::Isolated, out);
    }
    pieces = std::move(out);
  }

 private:
  Kind kind_;
};

Behavior parse_behavior(const std::string& b, const std::string& file) {
  if (b == "Removed") return Behavior::Removed;
  if (b == "Isolated") return Behavior::Isolated;
  if (b == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::MergedWithNext;
  if (b == "Contiguous") return Behavior::Contiguous;
  fail(ErrorKind::Input, "{}: unknown split behavior '{}'", file, b);
}

}  // namespace

const std::string& byte_to_char(unsigned char b) { return byte_maps().to_char[b]; }

int char_to_byte(uint32_t cp) { return cp < 324 ? byte_maps().to_byte[cp] : -1; }

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& j, const std::string& file) {
  if (j.is_null()) return nullptr;
  const std::string type = j.at("type").get<std::string>();
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (const auto& p : j.at("pretokenizers")) {
      if (auto q = make_pre_tokenizer(p, file)) parts.push_back(std::move(q));
    }
    return std::make_unique<SequencePre>(std::move(parts));
  }
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPre>(j.value("add_prefix_space", true), j.value("use_regex", true));
  }
  if (type == "Split") {
    const json& pat = j.at("pattern");
    const Behavior behavior = parse_behavior(j.value("behavior", std::string("Isolated")), file);
    const bool invert = j.value("invert", false);
    if (pat.contains("String")) {
      return std::make_unique<SplitPre>(std::nullopt, pat.at("String").get<std::string>(), behavior, invert);
    }
    const std::string regex = pat.at("Regex").get<std::string>();
    const auto known = find_split_pattern(regex);
    if (!known) {
      fail(ErrorKind::Input, "{}: Split pre-tokenizer regex not supported (GPT-2, Llama-3 and Qwen2 patterns are): {}",
           file, regex);
    }
    return std::make_unique<SplitPre>(known, "", behavior, invert);
  }
  if (type == "Metaspace") {
    Prepend prepend = Prepend::Always;
    if (j.contains("prepend_scheme")) {
      const std::string s = j.at("prepend_scheme").get<std::string>();
      prepend = s == "first" ? Prepend::First : s == "never" ? Prepend::Never : Prepend::Always;
    } else if (!j.value("add_prefix_space", true)) {
      prepend = Prepend::Never;
    }
    return std::make_unique<MetaspacePre>(j.value("replacement", std::string("\u2581")), prepend,
                                          j.value("split", true));
  }
  if (type == "Digits") {
    return std::make_unique<ClassSplitPre>(j.value("individual_digits", false) ? ClassSplitPre::SingleDigits
                                                                               : ClassSplitPre::DigitRuns);
  }
  if (type == "WhitespaceSplit") return std::make_unique<ClassSplitPre>(ClassSplitPre::Whitespace);
  fail(ErrorKind::Input, "{}: unsupported pre-tokenizer type '{}'", file, type);
}

}  // namespace amalgam
