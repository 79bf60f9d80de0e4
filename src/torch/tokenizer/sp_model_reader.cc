// tokenizer.model without libsentencepiece: reads the ModelProto (protobuf wire format)
// of a SentencePiece BPE model (Llama-2/Mistral) and turns it into the equivalent
// tokenizer.json pipeline, as transformers' LlamaConverter does: merges ordered by the
// score of the merged piece, byte fallback, "▁" dummy prefix. Used when amalgam is
// built without libsentencepiece (which cannot share a process with libtorch's
// protobuf, see docs/tokenizers.md).
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/util/error.h"
#include "torch/tokenizer/hf_tokenizer.h"

namespace amalgam {

namespace {

using nlohmann::json;

struct Reader {
  std::string_view s;
  size_t pos = 0;
  const std::string& file;
  bool done() const { return pos >= s.size(); }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= s.size()) fail(ErrorKind::Input, "{}: truncated protobuf", file);
      const auto b = static_cast<unsigned char>(s[pos++]);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail(ErrorKind::Input, "{}: bad varint", file);
  }
  std::string_view bytes(size_t n) {
    if (pos + n > s.size()) fail(ErrorKind::Input, "{}: truncated protobuf", file);
    auto out = s.substr(pos, n);
    pos += n;
    return out;
  }
  // Reads one field; returns its number and wire type, the payload in `len`/`value`.
  std::pair<uint32_t, int> field(std::string_view* len, uint64_t* value) {
    const uint64_t key = varint();
    const int wire = static_cast<int>(key & 7);
    switch (wire) {
      case 0: *value = varint(); break;
      case 1: bytes(8); break;
      case 2: *len = bytes(varint()); break;
      case 5: {
        const auto b = bytes(4);
        uint32_t v;
        std::memcpy(&v, b.data(), 4);
        *value = v;
        break;
      }
      default: fail(ErrorKind::Input, "{}: unsupported protobuf wire type {}", file, wire);
    }
    return {static_cast<uint32_t>(key >> 3), wire};
  }
};

struct SpPiece {
  std::string text;
  float score = 0;
  int type = 1;  // NORMAL=1, UNKNOWN=2, CONTROL=3, USER_DEFINED=4, UNUSED=5, BYTE=6
};

}  // namespace

std::unique_ptr<Tokenizer> load_sentencepiece_native(const std::string& path, const TokenizerConfig& config) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorKind::Io, "{}: cannot open", path);
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string data = buf.str();

  std::vector<SpPiece> pieces;
  int model_type = 1;
  bool byte_fallback = false, add_dummy_prefix = true, remove_extra_ws = true, escape_ws = true;
  std::string charsmap;
  Reader r{data, 0, path};
  while (!r.done()) {
    std::string_view len;
    uint64_t value = 0;
    const auto [num, wire] = r.field(&len, &value);
    if (wire != 2) continue;
    Reader sub{len, 0, path};
    if (num == 1) {
      SpPiece p;
      while (!sub.done()) {
        std::string_view l;
        uint64_t v = 0;
        const auto [n, w] = sub.field(&l, &v);
        if (n == 1 && w == 2) p.text = std::string(l);
        if (n == 2 && w == 5) {
          const auto bits = static_cast<uint32_t>(v);
          std::memcpy(&p.score, &bits, 4);
        }
        if (n == 3 && w == 0) p.type = static_cast<int>(v);
      }
      pieces.push_back(std::move(p));
    } else if (num == 2) {  // TrainerSpec
      while (!sub.done()) {
        std::string_view l;
        uint64_t v = 0;
        const auto [n, w] = sub.field(&l, &v);
        if (n == 3 && w == 0) model_type = static_cast<int>(v);
        if (n == 35 && w == 0) byte_fallback = v != 0;
      }
    } else if (num == 3) {  // NormalizerSpec
      while (!sub.done()) {
        std::string_view l;
        uint64_t v = 0;
        const auto [n, w] = sub.field(&l, &v);
        if (n == 2 && w == 2) charsmap = std::string(l);
        if (n == 3 && w == 0) add_dummy_prefix = v != 0;
        if (n == 4 && w == 0) remove_extra_ws = v != 0;
        if (n == 5 && w == 0) escape_ws = v != 0;
      }
    }
  }
  if (pieces.empty()) fail(ErrorKind::Input, "{}: not a SentencePiece model (no pieces)", path);
  if (model_type != 2) {
    fail(ErrorKind::Input, "{}: SentencePiece model type {} is not supported without libsentencepiece (BPE is)", path,
         model_type);
  }
  if (!charsmap.empty() || remove_extra_ws || !escape_ws) {
    fail(ErrorKind::Input,
         "{}: SentencePiece normalization other than identity (Llama's) is not supported without libsentencepiece",
         path);
  }

  // Vocabulary and the pieces' ranks: merges come in order of the merged piece's score.
  json vocab = json::object();
  std::map<std::string, int> id_of;
  std::string unk;
  json added = json::array();
  for (size_t i = 0; i < pieces.size(); ++i) {
    const auto& p = pieces[i];
    vocab[p.text] = i;
    id_of[p.text] = static_cast<int>(i);
    if (p.type == 2) unk = p.text;
    if (p.type == 4) {
      added.push_back({{"id", i}, {"content", p.text}, {"special", false}, {"normalized", true}});
    }
  }
  struct Merge {
    float score;
    int id;
    std::string a, b;
  };
  std::vector<Merge> merges;
  for (size_t i = 0; i < pieces.size(); ++i) {
    const auto& p = pieces[i];
    if (p.type != 1 && p.type != 4) continue;
    for (size_t k = 1; k < p.text.size(); ++k) {
      if ((static_cast<unsigned char>(p.text[k]) & 0xC0) == 0x80) continue;  // inside a character
      const std::string a = p.text.substr(0, k), b = p.text.substr(k);
      if (id_of.count(a) && id_of.count(b)) merges.push_back({p.score, static_cast<int>(i), a, b});
    }
  }
  std::stable_sort(merges.begin(), merges.end(), [&](const Merge& x, const Merge& y) {
    if (x.score != y.score) return x.score > y.score;
    if (x.id != y.id) return x.id < y.id;
    return id_of[x.a] < id_of[y.a];
  });
  json merge_list = json::array();
  for (const auto& m : merges) merge_list.push_back({m.a, m.b});

  json normalizers = json::array();
  if (add_dummy_prefix) normalizers.push_back({{"type", "Prepend"}, {"prepend", "\u2581"}});
  normalizers.push_back({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}});
  json decoders = {{{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}},
                   {{"type", "ByteFallback"}},
                   {{"type", "Fuse"}}};
  if (add_dummy_prefix) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
  json model = {{"type", "BPE"}, {"vocab", vocab}, {"merges", merge_list}, {"byte_fallback", byte_fallback},
                {"fuse_unk", true}};
  if (!unk.empty()) model["unk_token"] = unk;
  const json tj = {{"added_tokens", added},
                   {"normalizer", {{"type", "Sequence"}, {"normalizers", normalizers}}},
                   {"pre_tokenizer", nullptr},
                   {"post_processor", nullptr},
                   {"decoder", {{"type", "Sequence"}, {"decoders", decoders}}},
                   {"model", model}};

  // BOS/EOS as libsentencepiece users (transformers' slow tokenizer) see them.
  TokenizerConfig c = config;
  auto first_of_type = [&](int type, const char* fallback) -> std::optional<std::string> {
    if (id_of.count(fallback)) return std::string(fallback);
    for (const auto& p : pieces) {
      if (p.type == type) return p.text;
    }
    return std::nullopt;
  };
  if (!c.bos_token) c.bos_token = first_of_type(3, "<s>");
  if (!c.eos_token) c.eos_token = first_of_type(3, "</s>");
  if (!c.add_bos_token) c.add_bos_token = true;
  if (!c.add_eos_token) c.add_eos_token = false;
  return make_hf_tokenizer(tj, c, path);
}

}  // namespace amalgam
