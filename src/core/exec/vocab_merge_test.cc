// Merges of models whose tokenizers differ (METHODS.md §4): the output vocabulary of
// `tokenizer_source: union | base | MODEL` and `tokenizer.tokens`, the embedding rows
// re-mapped token by token (own row, else the single holder's, the base's, the holders'
// mean or zeros), the rewritten tokenizer files, and Tokenizers.js reading them back.
#include <sys/resource.h>

#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "exec/exec_test_util.h"
#include "exec/executor.h"
#include "io/model_dir.h"
#include "io/safetensors_reader.h"
#include "util/error.h"

namespace amalgam {
namespace {
namespace fs = std::filesystem;
using exec_test::ModelSpec;
using nlohmann::json;

const int kHidden = 8;

json added(int id, const std::string& content, bool special) {
  return {{"id", id},           {"content", content}, {"single_word", false}, {"lstrip", false},
          {"rstrip", false},    {"normalized", !special}, {"special", special}};
}

// A BPE tokenizer.json of single-letter tokens.
void write_tokenizer(const std::string& dir, const json& vocab, const json& added_tokens) {
  json t = {{"version", "1.0"},
            {"truncation", nullptr},
            {"padding", nullptr},
            {"added_tokens", added_tokens},
            {"normalizer", nullptr},
            {"pre_tokenizer", {{"type", "WhitespaceSplit"}}},
            {"post_processor", nullptr},
            {"decoder", nullptr},
            {"model",
             {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
              {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
              {"fuse_unk", false}, {"byte_fallback", false}, {"vocab", vocab}, {"merges", json::array()}}}};
  exec_test::write_text(fs::path(dir) / "tokenizer.json", t.dump(1));
  json cfg = {{"model_max_length", 64}, {"added_tokens_decoder", json::object()}};
  for (const auto& a : added_tokens) {
    json e = a;
    e.erase("id");
    cfg["added_tokens_decoder"][std::to_string(a["id"].get<int>())] = e;
  }
  exec_test::write_text(fs::path(dir) / "tokenizer_config.json", cfg.dump(1));
}

json letters(const std::string& s) {
  json v = json::object();
  for (size_t i = 0; i < s.size(); ++i) v[std::string(1, s[i])] = static_cast<int>(i);
  return v;
}

struct VocabModels {
  std::string root, base, e1, e2;
};

// base: a-j (0-9), <s> 10 (added), <pad> 12 (added, >= its vocab_size 12: stripped).
// e1: a-j, <s> 10, x 11, <tool> 12 (added, special); 13 rows.
// e2: b a c-j (a and b swapped), <s> 10, x 11, y 12; 13 rows.
const VocabModels& vocab_models() {
  static VocabModels m = [] {
    VocabModels m;
    m.root = exec_test::scratch_dir("vocab_models");
    ModelSpec s;
    s.layers = 1, s.hidden = kHidden, s.intermediate = 16;
    m.base = m.root + "/base", m.e1 = m.root + "/e1", m.e2 = m.root + "/e2";
    s.vocab = 12, s.noise = 0;
    exec_test::write_model(m.base, s);
    write_tokenizer(m.base, letters("abcdefghij"), json::array({added(10, "<s>", true), added(12, "<pad>", true)}));
    s.vocab = 13, s.seed = 1, s.noise = 0.3f;
    exec_test::write_model(m.e1, s);
    json v1 = letters("abcdefghij");
    v1["x"] = 11;
    write_tokenizer(m.e1, v1, json::array({added(10, "<s>", true), added(12, "<tool>", true)}));
    s.seed = 2;
    exec_test::write_model(m.e2, s);
    json v2 = letters("bacdefghij");
    v2["x"] = 11, v2["y"] = 12;
    write_tokenizer(m.e2, v2, json::array({added(10, "<s>", true)}));
    return m;
  }();
  return m;
}

using exec_test::merge_text;

std::vector<float> rows_of(const std::string& dir, const std::string& tensor, int64_t* rows = nullptr) {
  auto m = ModelDir::open(dir);
  TensorRef t = m->get(tensor);
  std::vector<float> v(t.info->numel());
  t.file->read_f32(*t.info, 0, v.size(), v.data());
  if (rows) *rows = t.info->shape[0];
  return v;
}

std::vector<float> row(const std::vector<float>& m, int64_t r) {
  return std::vector<float>(m.begin() + r * kHidden, m.begin() + (r + 1) * kHidden);
}

std::vector<float> mean(std::vector<std::vector<float>> rows) {
  std::vector<float> out(kHidden);
  for (int c = 0; c < kHidden; ++c) {
    double s = 0;
    for (const auto& r : rows) s += r[c];
    out[c] = static_cast<float>(s / static_cast<double>(rows.size()));
  }
  return out;
}

void expect_row_near(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t c = 0; c < got.size(); ++c) EXPECT_NEAR(got[c], want[c], 1e-6) << what << " col " << c;
}

std::string linear3(const VocabModels& m, const std::string& tokenizer) {
  return "merge_method: linear\nbase_model: " + m.base + "\nmodels:\n  - model: " + m.base +
         "\n    parameters: {weight: 1}\n  - model: " + m.e1 + "\n    parameters: {weight: 1}\n  - model: " +
         m.e2 + "\n    parameters: {weight: 1}\n" + tokenizer;
}

TEST(VocabMerge, UnionRemapsRowsByToken) {
  const VocabModels& m = vocab_models();
  const std::string out = exec_test::scratch_dir("union") + "/out";
  merge_text(linear3(m, "tokenizer_source: union\n"), out);

  // Output vocabulary: base's a-j, <s>; then x (e1), y (e2), then e1's added <tool>.
  json tok = json::parse(exec_test::read_bytes(out + "/tokenizer.json"));
  std::map<std::string, int> ids;
  for (const auto& a : tok["added_tokens"]) ids[a["content"]] = a["id"];
  EXPECT_EQ(ids, (std::map<std::string, int>{{"<s>", 10}, {"x", 11}, {"y", 12}, {"<tool>", 13}}));
  for (const auto& a : tok["added_tokens"]) {
    if (a["content"] == "<tool>") {
      EXPECT_TRUE(a["special"].get<bool>());
    }
  }
  EXPECT_EQ(tok["model"]["vocab"].size(), 10u);
  json cfg = json::parse(exec_test::read_bytes(out + "/tokenizer_config.json"));
  EXPECT_TRUE(cfg["added_tokens_decoder"].contains("13"));
  EXPECT_FALSE(cfg["added_tokens_decoder"].contains("12") && cfg["added_tokens_decoder"]["12"]["content"] == "<pad>");
  EXPECT_EQ(json::parse(exec_test::read_bytes(out + "/config.json"))["vocab_size"], 14);

  for (const char* name : {"model.embed_tokens.weight", "lm_head.weight"}) {
    auto b = rows_of(m.base, name), e1 = rows_of(m.e1, name), e2 = rows_of(m.e2, name);
    int64_t rows = 0;
    auto got = rows_of(out, name, &rows);
    ASSERT_EQ(rows, 14);
    // Rebuilt rows per model, then the linear mean of the three.
    auto expect = [&](int64_t r, std::vector<float> rb, std::vector<float> r1, std::vector<float> r2) {
      expect_row_near(row(got, r), mean({rb, r1, r2}), std::string(name) + " row " + std::to_string(r));
    };
    expect(0, row(b, 0), row(e1, 0), row(e2, 1));  // a: e2 keeps it at 1
    expect(1, row(b, 1), row(e1, 1), row(e2, 0));
    expect(5, row(b, 5), row(e1, 5), row(e2, 5));
    expect(10, row(b, 10), row(e1, 10), row(e2, 10));
    auto x = mean({row(e1, 11), row(e2, 11)});  // two holders, not the base: their mean
    expect(11, x, row(e1, 11), row(e2, 11));
    expect(12, row(e2, 12), row(e2, 12), row(e2, 12));  // y: the only holder's row
    expect(13, row(e1, 12), row(e1, 12), row(e1, 12));  // <tool>
  }
}

TEST(VocabMerge, PlanSaysWhatHappensToTheVocabulary) {
  const VocabModels& m = vocab_models();
  ModelSet set;
  MergePlan p = make_plan(parse_recipe_text(linear3(m, "tokenizer_source: union\n")), set, PlanOptions{});
  EXPECT_EQ(p.vocabulary, json({{"source", "union"}, {"tokens", 14}, {"appended", 3}, {"remapped", true}}));
  EXPECT_TRUE(p.tokenizer_files.count("tokenizer.json"));
  // The same vocabulary in every model: nothing moves, files are copied.
  ModelSet set2;
  MergePlan q = make_plan(parse_recipe_text("merge_method: linear\nmodels:\n  - model: " + m.e1 +
                                            "\n  - model: " + m.e1 + "/.\nparameters: {weight: 1}\n"
                                            "tokenizer_source: union\n"),
                          set2, PlanOptions{});
  EXPECT_EQ(q.vocabulary["remapped"], false);
  EXPECT_TRUE(q.tokenizer_files.empty());
}

TEST(VocabMerge, SameBytesForAnyThreadsAndChunks) {
  const VocabModels& m = vocab_models();
  const std::string root = exec_test::scratch_dir("union_det");
  const std::string recipe = linear3(m, "tokenizer:\n  source: union\n  pad_to_multiple_of: 8\n");
  merge_text(recipe, root + "/a");
  ExecOptions o;
  o.threads = 3;
  o.chunk_elements = 13;
  merge_text(recipe, root + "/b", o);
  EXPECT_EQ(exec_test::weight_bytes(root + "/a"), exec_test::weight_bytes(root + "/b"));
  int64_t rows = 0;
  auto got = rows_of(root + "/a", "model.embed_tokens.weight", &rows);
  EXPECT_EQ(rows, 16);
  // Padding rows: the mean of each model's rebuilt real rows; linear of means = mean row.
  std::vector<std::vector<float>> real;
  for (int r = 0; r < 14; ++r) real.push_back(row(got, r));
  expect_row_near(row(got, 15), mean(real), "padding");
  EXPECT_EQ(json::parse(exec_test::read_bytes(root + "/a/config.json"))["vocab_size"], 16);
}

// Many models whose vocabularies all differ: every reader of a re-mapped embedding job
// reads the other models' rows through their files' descriptors, not through one it
// opens per input (that was N^2 descriptors per job: 24 models hit a 1024 limit).
TEST(VocabMerge, ManyModelsStayWithinFewDescriptors) {
  const int kExperts = 16;
  const std::string root = exec_test::scratch_dir("many_vocab");
  ModelSpec s;
  s.layers = 1, s.hidden = kHidden, s.intermediate = 16, s.vocab = 11;
  std::string recipe = "merge_method: linear\ntokenizer_source: union\nmodels:\n";
  for (int i = 0; i < kExperts; ++i) {
    const std::string dir = fmt::format("{}/e{}", root, i);
    s.seed = static_cast<uint64_t>(i + 1);
    exec_test::write_model(dir, s);
    json v = letters("abcdefghij");
    v[fmt::format("t{}", i)] = 10;  // a token no other model has
    write_tokenizer(dir, v, json::array());
    recipe += fmt::format("  - model: {}\n    parameters: {{weight: 1.0}}\n", dir);
  }
  int open_now = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator("/proc/self/fd")) ++open_now;
  struct rlimit old_limit;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old_limit), 0);
  struct rlimit low = old_limit;
  // Files (16) + readers of up to 3 jobs in flight (3 x 16) + the writer: well below
  // this; one re-mapped job alone used 16 x 16 before.
  low.rlim_cur = static_cast<rlim_t>(open_now + 150);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  std::string error;
  try {
    merge_text(recipe, root + "/out");
  } catch (const Error& e) {
    error = e.what();
  }
  setrlimit(RLIMIT_NOFILE, &old_limit);
  ASSERT_EQ(error, "");
  int64_t rows = 0;
  auto got = rows_of(root + "/out", "model.embed_tokens.weight", &rows);
  EXPECT_EQ(rows, 10 + kExperts);
  // Token t3 (output id 13) comes only from expert 3's row 10 (weights sum to 16: the
  // linear merge normalizes, and one holder fills every model's row).
  auto e3 = rows_of(root + "/e3", "model.embed_tokens.weight");
  expect_row_near(row(got, 13), row(e3, 10), "t3");
}

TEST(VocabMerge, BaseSourceRemapsOtherModelsIntoTheBaseVocabulary) {
  const VocabModels& m = vocab_models();
  const std::string out = exec_test::scratch_dir("base_src") + "/out";
  merge_text(linear3(m, "tokenizer_source: base\n"), out);
  auto b = rows_of(m.base, "model.embed_tokens.weight"), e1 = rows_of(m.e1, "model.embed_tokens.weight"),
       e2 = rows_of(m.e2, "model.embed_tokens.weight");
  int64_t rows = 0;
  auto got = rows_of(out, "model.embed_tokens.weight", &rows);
  ASSERT_EQ(rows, 11);  // a-j, <s>: the stripped base tokenizer
  expect_row_near(row(got, 0), mean({row(b, 0), row(e1, 0), row(e2, 1)}), "a");
  expect_row_near(row(got, 1), mean({row(b, 1), row(e1, 1), row(e2, 0)}), "b");
  json tok = json::parse(exec_test::read_bytes(out + "/tokenizer.json"));
  for (const auto& a : tok["added_tokens"]) EXPECT_NE(a["content"], "<pad>");  // id 12 >= vocab_size 12
}

TEST(VocabMerge, TokensConfigSourcesAndForce) {
  const VocabModels& m = vocab_models();
  const std::string out = exec_test::scratch_dir("tokens") + "/out";
  merge_text(linear3(m, "tokenizer:\n  source: base\n  tokens:\n"
                   "    y:\n      source: {kind: zero}\n"
                   "    a:\n      source: " + m.e2 + "\n      force: true\n"
                   "    <new>:\n      source: {kind: model_token, model: " + m.e1 + ", token: x}\n"
                   "    <id>:\n      source: {kind: model_token, model: " + m.e1 + ", token_id: 3}\n"),
        out);
  auto e1 = rows_of(m.e1, "model.embed_tokens.weight"), e2 = rows_of(m.e2, "model.embed_tokens.weight");
  int64_t rows = 0;
  auto got = rows_of(out, "model.embed_tokens.weight", &rows);
  ASSERT_EQ(rows, 14);  // base's 11 + y, <new>, <id> (in recipe order)
  expect_row_near(row(got, 0), row(e2, 1), "a forced from e2");
  expect_row_near(row(got, 11), mean({std::vector<float>(kHidden, 0.f), std::vector<float>(kHidden, 0.f), row(e2, 12)}),
                  "y: zero where missing, own row in e2");
  expect_row_near(row(got, 12), row(e1, 11), "<new> = e1's x");
  expect_row_near(row(got, 13), row(e1, 3), "<id> = e1's row 3");
  json tok = json::parse(exec_test::read_bytes(out + "/tokenizer.json"));
  std::map<std::string, int> ids;
  for (const auto& a : tok["added_tokens"]) ids[a["content"]] = a["id"];
  EXPECT_EQ(ids["<new>"], 12);
}

TEST(VocabMerge, RecipeErrorsNameTheLine) {
  const VocabModels& m = vocab_models();
  const std::string out = exec_test::scratch_dir("tokens_err") + "/out";
  auto expect_error = [&](const std::string& tokens, const std::string& want) {
    try {
      merge_text(linear3(m, "tokenizer:\n  source: base\n  tokens:\n" + tokens), out);
      ADD_FAILURE() << "no error for " << tokens;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(out));
  };
  expect_error("    q:\n      source: {kind: model_token, model: " + m.e1 + ", token: nope}\n",
               "<string>:13: tokenizer.tokens.q: model '" + m.e1 + "' has no token 'nope'");
  expect_error("    q:\n      force: true\n", "<string>:13: tokenizer.tokens.q: force needs a source");
  expect_error("    q:\n      source: {kind: model_token, model: " + m.e1 + ", token_id: 99}\n",
               "row 99 is needed");
  expect_error("    q:\n      source: {kind: other}\n", "kind must be model_token or zero");
  expect_error("    q:\n      sorce: x\n", "unknown key 'sorce'");
}

// Tokenizers.js (the test oracle) reads the written tokenizer.json: the appended tokens
// encode to their new ids and decode back.
TEST(VocabMerge, TokenizersJsReadsTheUnionTokenizer) {
  const std::string oracles = std::string(AMALGAM_SOURCE_DIR) + "/tests/oracles";
  if (std::system("command -v node >/dev/null 2>&1") != 0 || !fs::exists(oracles + "/node_modules/@huggingface/tokenizers"))
    GTEST_SKIP() << "node or tests/oracles/node_modules missing (run tests/oracles/setup)";
  const VocabModels& m = vocab_models();
  const std::string root = exec_test::scratch_dir("union_js");
  merge_text(linear3(m, "tokenizer_source: union\n"), root + "/out");
  exec_test::write_text(root + "/in.json", R"({"texts_b64": ["YSB4IHkgPHRvb2w+IGI="], "decode": [[0, 11, 12, 13]]})");
  const std::string cmd = "node " + oracles + "/encode.mjs " + root + "/out " + root + "/in.json > " + root + "/res.json";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  json r = json::parse(exec_test::read_bytes(root + "/res.json"));
  EXPECT_EQ(r["encode"][0], json({0, 11, 12, 13, 1}));  // "a x y <tool> b"
  const std::string decoded = r["decode"][0].get<std::string>();
  EXPECT_NE(decoded.find("x"), std::string::npos) << r.dump();
  EXPECT_NE(decoded.find("<tool>"), std::string::npos) << r.dump();
}

}  // namespace
}  // namespace amalgam
