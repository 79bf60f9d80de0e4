// load_vocabulary: every tokenizer file form HF get_vocab() reads (tokenizer.json BPE and
// Unigram, vocab.json + added_tokens.json, vocab.txt, SentencePiece tokenizer.model), and
// malformed or mutated files: one Error naming the file, never a crash.
#include "plan/vocabulary.h"

#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>

#include "exec/exec_test_util.h"
#include "util/error.h"

namespace amalgam {
namespace {
namespace fs = std::filesystem;

std::string model_dir(const std::string& name, const std::map<std::string, std::string>& files) {
  const std::string dir = exec_test::scratch_dir("vocab_" + name);
  exec_test::write_text(fs::path(dir) / "config.json", R"({"model_type": "llama", "vocab_size": 8})");
  for (const auto& [f, text] : files) exec_test::write_text(fs::path(dir) / f, text);
  const std::string header = R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  std::string st(8, '\0');
  for (int i = 0; i < 8; ++i) st[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  exec_test::write_text(fs::path(dir) / "model.safetensors", st + header + std::string(4, '\0'));
  return dir;
}

std::optional<Vocabulary> load(const std::string& dir) { return load_vocabulary(*ModelDir::open(dir)); }

// A SentencePiece ModelProto with `pieces` (field 1 {1: piece, 2: score, 3: type}) and a
// trainer_spec (field 2) to skip.
std::string sentencepiece_model(const std::vector<std::string>& pieces) {
  auto varint = [](std::string& out, uint64_t v) {
    while (v >= 0x80) out.push_back(static_cast<char>((v & 0x7f) | 0x80)), v >>= 7;
    out.push_back(static_cast<char>(v));
  };
  std::string out;
  for (const std::string& p : pieces) {
    std::string msg;
    varint(msg, (1 << 3) | 2), varint(msg, p.size()), msg += p;
    varint(msg, (2 << 3) | 5), msg += std::string("\0\0\x80\xbf", 4);  // score -1.0f
    varint(msg, (3 << 3) | 0), varint(msg, 1);
    varint(out, (1 << 3) | 2), varint(out, msg.size()), out += msg;
  }
  varint(out, (2 << 3) | 2), varint(out, 3), out += "abc";
  return out;
}

TEST(Vocabulary, ReadsEveryTokenizerForm) {
  auto bpe = load(model_dir("bpe", {{"tokenizer.json",
                                     R"({"model": {"type": "BPE", "vocab": {"b": 1, "a": 0, "c": 2}, "merges": []},
                                         "added_tokens": [{"id": 3, "content": "<s>", "special": true}]})"}}));
  ASSERT_TRUE(bpe);
  EXPECT_EQ(bpe->entries, (std::vector<std::pair<std::string, int64_t>>{{"a", 0}, {"b", 1}, {"c", 2}, {"<s>", 3}}));
  EXPECT_TRUE(bpe->is_added("<s>"));
  EXPECT_FALSE(bpe->is_added("a"));

  auto unigram = load(model_dir("unigram", {{"tokenizer.json",
                                             R"({"model": {"type": "Unigram", "vocab": [["<unk>", 0], ["x", -1.5], ["y", -2]]}})"}}));
  ASSERT_TRUE(unigram);
  EXPECT_EQ(unigram->id_of("y"), 2);

  auto slow = load(model_dir("vocab_json", {{"vocab.json", R"({"a": 0, "b": 1})"},
                                            {"added_tokens.json", R"({"<x>": 2})"}}));
  ASSERT_TRUE(slow);
  EXPECT_EQ(slow->id_of("<x>"), 2);
  EXPECT_TRUE(slow->is_added("<x>"));

  auto txt = load(model_dir("vocab_txt", {{"vocab.txt", "[PAD]\r\n[UNK]\nhello\n"}}));
  ASSERT_TRUE(txt);
  EXPECT_EQ(txt->id_of("hello"), 2);
  EXPECT_EQ(txt->id_of("[UNK]"), 1);

  auto sp = load(model_dir("spm", {{"tokenizer.model", sentencepiece_model({"<unk>", "<s>", "\xe2\x96\x81the"})}}));
  ASSERT_TRUE(sp);
  EXPECT_EQ(sp->id_of("\xe2\x96\x81the"), 2);
  EXPECT_EQ(sp->entries.size(), 3u);

  EXPECT_FALSE(load(model_dir("none", {})));
}

TEST(Vocabulary, MalformedFilesNameTheFile) {
  for (const auto& [name, file, text] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"badjson", "tokenizer.json", "{\"model\": "},
           {"badid", "tokenizer.json", R"({"model": {"vocab": {"a": "zero"}}})"},
           {"negid", "vocab.json", R"({"a": -3})"},
           {"badadded", "tokenizer.json", R"({"added_tokens": [{"content": 3}]})"},
           {"badspm", "tokenizer.model", std::string("\x0a\xff\xff\xff\xff\x0f", 6)},
       }) {
    const std::string dir = model_dir(name, {{file, text}});
    try {
      load(dir);
      ADD_FAILURE() << name << ": no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
      EXPECT_EQ(e.kind(), ErrorKind::Input);
    }
  }
}

// Truncated and bit-flipped tokenizer files: a vocabulary or an Error, nothing else.
TEST(Vocabulary, FuzzedFilesEitherLoadOrFailCleanly) {
  const std::string json_text =
      R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]},
          "added_tokens": [{"id": 3, "content": "<s>", "special": true}]})";
  const std::string spm = sentencepiece_model({"<unk>", "a", "b", "ab"});
  std::mt19937_64 rng(7);
  int loaded = 0, failed = 0;
  for (int round = 0; round < 600; ++round) {
    const bool proto = round % 2;
    std::string bytes = proto ? spm : json_text;
    if (round % 3 == 0) bytes.resize(rng() % bytes.size());
    for (int k = 0; k < 1 + static_cast<int>(rng() % 4); ++k)
      if (!bytes.empty()) bytes[rng() % bytes.size()] ^= static_cast<char>(1 << (rng() % 8));
    const std::string dir = model_dir("fuzz", {{proto ? "tokenizer.model" : "tokenizer.json", bytes}});
    try {
      load(dir);
      ++loaded;
    } catch (const Error&) {
      ++failed;
    }
  }
  EXPECT_GT(loaded, 0);
  EXPECT_GT(failed, 0);
}

}  // namespace
}  // namespace amalgam
