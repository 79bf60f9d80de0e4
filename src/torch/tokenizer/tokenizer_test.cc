// Unit tests of the tokenizers on small hand-built vocabularies (no node needed): UTF-8
// repair, the pre-tokenizer regex matchers, BPE merging, added tokens, post-processors,
// tokenizer_config.json, the vocab-only byte-char fixture, SentencePiece and errors.
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/util/error.h"
#include "torch/tokenizer/hf_tokenizer.h"
#include "torch/tokenizer/nfc.h"
#include "torch/tokenizer/pipeline.h"
#include "torch/tokenizer/split_patterns.h"
#include "torch/tokenizer/tokenizer.h"
#include "torch/tokenizer/unicode.h"

#ifdef AMALGAM_HAVE_SENTENCEPIECE
#include <sentencepiece_trainer.h>
#endif

namespace amalgam {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::vector<std::string> pieces(SplitPattern p, std::string_view text) {
  std::vector<std::string> out;
  for (const auto& r : find_matches(p, text)) out.emplace_back(text.substr(r.begin, r.end - r.begin));
  return out;
}

TEST(Utf8, ReplacesMaximalSubparts) {
  EXPECT_EQ(sanitize_utf8("abc"), "abc");
  EXPECT_EQ(sanitize_utf8("a\xFF" "b"), "a\uFFFD" "b");
  // A truncated 4-byte sequence is one maximal subpart: one U+FFFD.
  EXPECT_EQ(sanitize_utf8("\xF0\x9F\x98" "x"), "\uFFFDx");
  // Surrogates and overlongs: each byte is its own subpart.
  EXPECT_EQ(sanitize_utf8("\xED\xA0\x80"), "\uFFFD\uFFFD\uFFFD");
  EXPECT_EQ(sanitize_utf8("\xC0\xAF"), "\uFFFD\uFFFD");
  EXPECT_TRUE(is_valid_utf8("\uFFFD and \U0001F600"));
  EXPECT_FALSE(is_valid_utf8("\x80"));
}

TEST(UnicodeProperties, LettersNumbersSpaces) {
  EXPECT_TRUE(is_letter(U'é'));
  EXPECT_TRUE(is_letter(U'中'));
  EXPECT_TRUE(is_letter(U'ع'));
  EXPECT_FALSE(is_letter(U'1'));
  EXPECT_FALSE(is_letter(0x0301));  // a combining mark is \p{M}, not \p{L}
  EXPECT_TRUE(is_number(U'٣'));
  EXPECT_TRUE(is_number(U'½'));
  EXPECT_TRUE(is_number(0x216B));  // Roman numeral twelve, \p{Nl}
  EXPECT_TRUE(is_whitespace(0x3000));
  EXPECT_TRUE(is_whitespace(0x85));
  EXPECT_FALSE(is_whitespace(0x200B));  // zero width space is not White_Space
  EXPECT_FALSE(is_whitespace(0xFEFF));
}

TEST(Nfc, ComposesReordersAndKeepsExclusions) {
  EXPECT_EQ(to_nfc("plain ascii"), "plain ascii");
  EXPECT_EQ(to_nfc("e\u0301"), "\u00E9");
  EXPECT_EQ(to_nfc("\u00E9"), "\u00E9");
  // Marks are reordered by combining class (dot below 220 before acute 230), then compose.
  EXPECT_EQ(to_nfc("s\u0307\u0323"), "\u1E69");
  EXPECT_EQ(to_nfc("u\u0308\u0304"), "\u01D6");
  // Hangul: conjoining jamo L+V+T become one syllable.
  EXPECT_EQ(to_nfc("\u1112\u1161\u11AB"), "\uD55C");
  // Singletons decompose and stay decomposed: Angstrom sign -> A with ring.
  EXPECT_EQ(to_nfc("\u212B"), "\u00C5");
  // Composition exclusions stay decomposed.
  EXPECT_EQ(to_nfc("\u0958"), "\u0915\u093C");
  // A blocked mark does not compose: a second acute after an acute stays.
  EXPECT_EQ(to_nfc("e\u0301\u0301"), "\u00E9\u0301");
}

TEST(SplitPatterns, Gpt2) {
  using V = std::vector<std::string>;
  EXPECT_EQ(pieces(SplitPattern::Gpt2, "Hello world's  end 123!!\n\n x"),
            (V{"Hello", " world", "'s", " ", " end", " 123", "!!", "\n\n", " x"}));
  EXPECT_EQ(pieces(SplitPattern::Gpt2, "a   "), (V{"a", "   "}));
  EXPECT_EQ(pieces(SplitPattern::Gpt2, "I'M"), (V{"I", "'", "M"}));  // case-sensitive
}

TEST(SplitPatterns, Llama3AndQwen2) {
  using V = std::vector<std::string>;
  EXPECT_EQ(pieces(SplitPattern::Llama3, "I'M 12345 abc\n\n  def"),
            (V{"I", "'M", " ", "123", "45", " abc", "\n\n", " ", " def"}));
  EXPECT_EQ(pieces(SplitPattern::Qwen2, "x 123"), (V{"x", " ", "1", "2", "3"}));
  EXPECT_EQ(pieces(SplitPattern::Llama3, "f(x):\n  \n\ty"), (V{"f", "(x", "):\n", "  \n", "\ty"}));
  EXPECT_EQ(find_split_pattern("\\w+"), std::nullopt);
}

std::vector<std::string> pre_tokenize(const json& config, const std::string& text) {
  const auto pre = make_pre_tokenizer(config, "test");
  std::vector<Piece> p{{text, true}};
  pre->pre_tokenize(p);
  std::vector<std::string> out;
  for (const auto& x : p) out.push_back(x.text);
  return out;
}

// The examples of Hugging Face's SplitDelimiterBehavior documentation.
TEST(PreTokenizers, SplitBehaviors) {
  using V = std::vector<std::string>;
  auto split = [](const char* behavior) {
    return pre_tokenize({{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", false}},
                        "the-final--countdown");
  };
  EXPECT_EQ(split("Removed"), (V{"the", "final", "countdown"}));
  EXPECT_EQ(split("Isolated"), (V{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(split("MergedWithPrevious"), (V{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(split("MergedWithNext"), (V{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(split("Contiguous"), (V{"the", "-", "final", "--", "countdown"}));
}

TEST(PreTokenizers, MetaspaceSplitAndDigits) {
  using V = std::vector<std::string>;
  const std::string m = "\u2581";
  EXPECT_EQ(pre_tokenize({{"type", "Metaspace"}, {"replacement", m}, {"prepend_scheme", "always"}}, "Hello  world"),
            (V{m + "Hello", m, m + "world"}));
  EXPECT_EQ(pre_tokenize({{"type", "Metaspace"}, {"replacement", m}, {"prepend_scheme", "never"}, {"split", false}},
                         "Hello  world"),
            (V{"Hello" + m + m + "world"}));
  EXPECT_EQ(pre_tokenize({{"type", "Digits"}, {"individual_digits", false}}, "abc123d4"), (V{"abc", "123", "d", "4"}));
  EXPECT_EQ(pre_tokenize({{"type", "Digits"}, {"individual_digits", true}}, "a12"), (V{"a", "1", "2"}));
  EXPECT_EQ(pre_tokenize({{"type", "WhitespaceSplit"}}, " a  b\n"), (V{"a", "b"}));
  EXPECT_EQ(pre_tokenize({{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}}, "hi you"),
            (V{"\xC4\xA0hi", "\xC4\xA0you"}));
}

// A tiny byte-level BPE: vocab of the letters it needs plus merges.
json tiny_byte_level() {
  json vocab = json::object();
  int id = 0;
  for (const char* t : {"h", "e", "l", "o", "w", "r", "d", "\xC4\xA0", "he", "ll", "hell", "hello", "\xC4\xA0w",
                        "or", "\xC4\xA0wor", "\xC4\xA0world", "!", "<"}) {
    vocab[t] = id++;
  }
  return json{{"added_tokens",
               json::array({{{"id", 100}, {"content", "<eos>"}, {"special", true}, {"normalized", false}},
                            {{"id", 101}, {"content", "<sep>"}, {"special", true}, {"normalized", false},
                             {"lstrip", true}, {"rstrip", true}},
                            {{"id", 102}, {"content", "hi"}, {"special", false}, {"single_word", true}}})},
              {"normalizer", nullptr},
              {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
              {"post_processor", {{"type", "RobertaProcessing"}, {"cls", {"<eos>", 100}}, {"sep", {"<eos>", 100}}}},
              {"decoder", {{"type", "ByteLevel"}}},
              {"model",
               {{"type", "BPE"},
                {"vocab", vocab},
                {"merges", {"h e", "l l", "he ll", "hell o", "\xC4\xA0 w", "o r", "\xC4\xA0w or", "\xC4\xA0wor l"}}}}};
}

TEST(HfTokenizer, MergesAddedTokensAndPostProcessor) {
  json j = tiny_byte_level();
  // "Ġworl" is not in the vocab: that merge is invalid, and a real file would not have it.
  EXPECT_THROW(make_hf_tokenizer(j, {}, "tiny"), Error);
  j["model"]["merges"] = {"h e", "l l", "he ll", "hell o", "\xC4\xA0 w", "o r", "\xC4\xA0w or"};
  j["model"]["vocab"]["\xC4\xA0worl"] = 50;
  j["model"]["merges"].push_back("\xC4\xA0wor l");
  j["model"]["merges"].push_back("\xC4\xA0worl d");
  j["model"]["vocab"].erase("\xC4\xA0world");
  j["model"]["vocab"]["\xC4\xA0world"] = 51;
  const auto tok = make_hf_tokenizer(j, {}, "tiny");
  const auto hello = *tok->token_to_id("hello"), world = *tok->token_to_id("\xC4\xA0world");
  EXPECT_EQ(tok->encode("hello world", false), (std::vector<int32_t>{hello, world}));
  EXPECT_EQ(tok->encode("hello world", true), (std::vector<int32_t>{100, hello, world, 100}));
  // <sep> strips the spaces on both sides; <eos> does not.
  EXPECT_EQ(tok->encode("hello  <sep>  hello", false), (std::vector<int32_t>{hello, 101, hello}));
  const auto sp = *tok->token_to_id("\xC4\xA0");
  EXPECT_EQ(tok->encode("hello <eos>", false), (std::vector<int32_t>{hello, sp, 100}));
  // single_word: "hi" alone is the added token, inside a word it is not.
  EXPECT_EQ(tok->encode("hi", false), (std::vector<int32_t>{102}));
  EXPECT_EQ(tok->encode("hhi", false).size(), 2u);  // h, then "hi" is not a word: h + unmatched i dropped
  EXPECT_EQ(tok->decode({100, hello, world, 100}, false), "<eos>hello world<eos>");
  EXPECT_EQ(tok->decode({100, hello, world, 100}, true), "hello world");
  EXPECT_EQ(tok->bos_id(), 100);
  EXPECT_EQ(tok->vocab_size(), j["model"]["vocab"].size() + 3);
  EXPECT_EQ(tok->id_to_token(101), "<sep>");
}

TEST(HfTokenizer, ConfigAddBosEosOverridesTemplate) {
  json j = tiny_byte_level();
  j["model"]["merges"] = json::array();
  TokenizerConfig c;
  c.bos_token = "<", c.eos_token = "<eos>", c.add_bos_token = true, c.add_eos_token = true;
  const auto tok = make_hf_tokenizer(j, c, "tiny");
  const auto ids = tok->encode("he", true);
  EXPECT_EQ(ids, (std::vector<int32_t>{*tok->token_to_id("<"), 0, 1, 100}));
  EXPECT_EQ(tok->eos_id(), 100);
}

TEST(HfTokenizer, ByteFallbackDecodingOfInvalidRunsGivesOneReplacementPerByte) {
  json vocab = {{"<unk>", 0}, {"a", 1}};
  for (int b = 0; b < 256; ++b) vocab[fmt::format("<0x{:02X}>", b)] = 2 + b;
  json j = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}, {"byte_fallback", true},
                       {"unk_token", "<unk>"}}},
            {"decoder", {{"type", "Sequence"}, {"decoders", {{{"type", "ByteFallback"}}, {{"type", "Fuse"}}}}}}};
  const auto tok = make_hf_tokenizer(j, {}, "bf");
  const auto ids = tok->encode("a\U0001F600", false);
  ASSERT_EQ(ids.size(), 5u);  // a + four byte tokens
  EXPECT_EQ(tok->decode(ids, false), "a\U0001F600");
  // Rust tokenizers' ByteFallback: an invalid run of n bytes gives n U+FFFD.
  EXPECT_EQ(tok->decode({ids[0], ids[1], ids[2], ids[3]}, false), "a\uFFFD\uFFFD\uFFFD");
}

TEST(HfTokenizer, ByteCharFixtureRoundTrips) {
  const auto tok = Tokenizer::from_dir(std::string(AMALGAM_SOURCE_DIR) + "/tests/fixtures/tokenizers/bytechar");
  EXPECT_EQ(tok->vocab_size(), 128u);
  const std::string text = "Hello, world!\n\tx = 42;  {ok}~\x01";
  const auto ids = tok->encode(text, true);
  ASSERT_EQ(ids.size(), text.size());
  for (size_t i = 0; i < text.size(); ++i) EXPECT_EQ(ids[i], static_cast<int32_t>(text[i]));
  EXPECT_EQ(tok->decode(ids, false), text);
  EXPECT_EQ(tok->bos_id(), std::nullopt);
  // Characters outside the vocabulary have no unk to go to: they are dropped, as in HF.
  EXPECT_EQ(tok->encode("a\u00E9b", false), (std::vector<int32_t>{'a', 'b'}));
}

TEST(HfTokenizer, Errors) {
  EXPECT_THROW(Tokenizer::from_dir("/nonexistent-dir"), Error);
  try {
    json j = tiny_byte_level();
    j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "\\w+"}}}, {"behavior", "Isolated"}};
    make_hf_tokenizer(j, {}, "my/tokenizer.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Input);
    EXPECT_NE(std::string(e.what()).find("my/tokenizer.json"), std::string::npos);
  }
  json j = tiny_byte_level();
  j["model"]["type"] = "Unigram";
  EXPECT_THROW(make_hf_tokenizer(j, {}, "x"), Error);
  j = tiny_byte_level();
  j["decoder"] = {{"type", "WordPiece"}};
  EXPECT_THROW(make_hf_tokenizer(j, {}, "x"), Error);
}

TEST(TokenizerConfig, ReadsTokensAsStringsOrObjects) {
  const fs::path dir = fs::path(::testing::TempDir()) / "tokcfg";
  fs::create_directories(dir);
  std::ofstream(dir / "tokenizer_config.json")
      << R"({"bos_token": {"__type": "AddedToken", "content": "<s>"}, "eos_token": "</s>", "pad_token": null,
            "add_bos_token": true})";
  const auto c = read_tokenizer_config((dir / "tokenizer_config.json").string());
  EXPECT_EQ(c.bos_token, "<s>");
  EXPECT_EQ(c.eos_token, "</s>");
  EXPECT_EQ(c.pad_token, std::nullopt);
  EXPECT_EQ(c.add_bos_token, true);
  EXPECT_EQ(c.add_eos_token, std::nullopt);
  std::ofstream(dir / "bad.json") << "{";
  EXPECT_THROW(read_tokenizer_config((dir / "bad.json").string()), Error);
}

// tests/fixtures/tokenizers/sp_bpe: a BPE tokenizer.model (byte fallback, identity
// normalization like Llama's) trained with libsentencepiece, and libsentencepiece's own
// ids and decodings of a few texts (expected.json), both made by SentencePieceTrainer.
TEST(SentencePiece, NativeReaderMatchesLibsentencepiece) {
  const std::string dir = std::string(AMALGAM_SOURCE_DIR) + "/tests/fixtures/tokenizers/sp_bpe";
  const auto tok = load_sentencepiece_native(dir + "/tokenizer.model", {});
  // from_dir: libsentencepiece when built with it (and usable), else the native reader.
  const auto via_dir = Tokenizer::from_dir(dir);
  std::ifstream f(dir + "/expected.json");
  const json expected = json::parse(f);
  ASSERT_GE(expected.size(), 10u);
  for (const auto& e : expected) {
    const std::string text = e["text"].get<std::string>();
    const auto ids = tok->encode(text, false);
    EXPECT_EQ(ids, e["ids"].get<std::vector<int32_t>>()) << text;
    EXPECT_EQ(tok->decode(ids, true), e["decoded"].get<std::string>()) << text;
    EXPECT_EQ(via_dir->encode(text, false), ids) << text;
  }
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->encode("fox", true).front(), 1);
}

#ifdef AMALGAM_HAVE_SENTENCEPIECE
TEST(SentencePiece, TrainedModelRoundTripsAndAddsBos) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("amalgam_sp_model_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  {
    std::ofstream corpus(dir / "corpus.txt");
    for (int i = 0; i < 200; ++i) {
      corpus << "the quick brown fox jumps over the lazy dog " << i << "\n"
             << "merging language models is fun and cheap\n";
    }
  }
  sentencepiece::util::Status status;
  try {
    status = sentencepiece::SentencePieceTrainer::Train(
      "--input=" + (dir / "corpus.txt").string() + " --model_prefix=" + (dir / "tokenizer").string() +
      " --vocab_size=320 --hard_vocab_limit=false --model_type=bpe --byte_fallback=true --minloglevel=2");
  } catch (const std::exception& e) {
    // In a process that also loaded libtorch's libprotobuf (docs/tokenizers.md).
    GTEST_SKIP() << "libsentencepiece unusable in this process: " << e.what();
  }
  ASSERT_TRUE(status.ok()) << status.ToString();
  const auto tok = Tokenizer::from_dir(dir.string());
  ASSERT_EQ(tok->bos_id(), 1);
  ASSERT_EQ(tok->eos_id(), 2);
  const std::string text = "the lazy fox merges models \xE2\x9C\x93";  // a check mark: byte fallback
  const auto ids = tok->encode(text, true);
  ASSERT_GT(ids.size(), 3u);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(tok->decode(ids, true), text);
  EXPECT_EQ(tok->decode(ids, false), "<s>" + text);
  EXPECT_EQ(tok->encode(text, false), std::vector<int32_t>(ids.begin() + 1, ids.end()));
  EXPECT_EQ(tok->token_to_id("</s>"), 2);
  EXPECT_EQ(tok->token_to_id("no-such-piece"), std::nullopt);
  EXPECT_GT(tok->vocab_size(), 259u);  // 3 specials + 256 bytes + pieces
  // tokenizer_config.json turns BOS off and EOS on.
  std::ofstream(dir / "tokenizer_config.json") << R"({"add_bos_token": false, "add_eos_token": true})";
  const auto tok2 = Tokenizer::from_dir(dir.string());
  const auto ids2 = tok2->encode(text, true);
  EXPECT_EQ(ids2.front(), ids[1]);
  EXPECT_EQ(ids2.back(), 2);
  fs::remove_all(dir);
}
#endif

}  // namespace
}  // namespace amalgam
