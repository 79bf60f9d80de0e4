// Tasks end to end on a model whose logits are known in closed form: a 0-layer Llama with
// one-hot embeddings is a bigram table (logits of the next byte given the current one are
// a row of M), with a real byte-vocabulary tokenizer.json. Every metric is checked against
// log-softmax of M computed here by hand; the CLI (`amalgam eval`) is run on the same model.
#include <gtest/gtest.h>

#include <cmath>

#include "io/model_dir.h"
#include "torch/eval/evaluator.h"
#include "torch/eval/test_model.h"
#include "util/error.h"

namespace amalgam {
namespace {

using testing_model::write_text;
constexpr int V = 128;

struct Bigram {
  std::vector<std::vector<double>> m = std::vector<std::vector<double>>(V, std::vector<double>(V, 0.0));
  double logp(int cur, int next) const {
    double mx = *std::max_element(m[cur].begin(), m[cur].end()), s = 0;
    for (double x : m[cur]) s += std::exp(x - mx);
    return m[cur][next] - mx - std::log(s);
  }
  double ll(const std::string& context_last_and_text) const {  // sum over consecutive pairs
    double t = 0;
    for (size_t i = 1; i < context_last_and_text.size(); ++i)
      t += logp(context_last_and_text[i - 1], context_last_and_text[i]);
    return t;
  }
};

Bigram make_bigram() {
  Bigram b;
  for (int i = 0; i < V; ++i)
    for (int j = 0; j < V; ++j) b.m[i][j] = 0.01 * ((i * 7 + j * 13) % 17);
  b.m['a']['b'] = 5;  // greedy chain: a -> b -> c -> newline
  b.m['b']['c'] = 5;
  b.m['c']['\n'] = 5;
  b.m[':'][' '] = 4;
  b.m[' ']['x'] = 1.0;
  b.m['x']['y'] = 3.0;
  b.m['y']['y'] = 1.5;
  return b;
}

std::string make_model(const Bigram& b, const std::string& name) {
  std::string dir = testing_model::scratch_dir(name);
  nlohmann::json config = {{"architectures", {"LlamaForCausalLM"}}, {"vocab_size", V}, {"hidden_size", V},
                           {"num_hidden_layers", 0}, {"num_attention_heads", 1}, {"intermediate_size", 4},
                           {"rms_norm_eps", 0.0}, {"max_position_embeddings", 64}};
  WeightMap w;
  w["model.embed_tokens.weight"] = torch::eye(V);
  // RMSNorm maps a one-hot row to sqrt(V) * one-hot; the norm weight undoes that.
  w["model.norm.weight"] = torch::full({V}, 1.0 / std::sqrt(static_cast<double>(V)));
  auto head = torch::zeros({V, V});
  for (int i = 0; i < V; ++i)
    for (int j = 0; j < V; ++j) head[j][i] = b.m[i][j];  // logit of next j given current i
  w["lm_head.weight"] = head;
  testing_model::write_model(dir + "/model", config, w);
  nlohmann::json vocab = nlohmann::json::object();
  for (int i = 0; i < V; ++i) vocab[std::string(1, static_cast<char>(i))] = i;
  nlohmann::json tok = {{"version", "1.0"}, {"added_tokens", nlohmann::json::array()}, {"normalizer", nullptr},
                        {"pre_tokenizer", nullptr}, {"post_processor", nullptr}, {"decoder", {{"type", "Fuse"}}},
                        {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()},
                                   {"unk_token", nullptr}, {"byte_fallback", false}}}};
  write_text(dir + "/model/tokenizer.json", tok.dump());
  return dir;
}

struct Loaded {
  std::unique_ptr<ModelDir> dir;
  ModelConfig config;
  WeightMap weights;
  std::unique_ptr<Tokenizer> tok;
};

Loaded load(const std::string& dir) {
  Loaded l;
  l.dir = ModelDir::open(dir);
  l.config = ModelConfig::from_json(l.dir->config(), dir);
  l.weights = load_weights(*l.dir, torch::kFloat32);
  l.tok = Tokenizer::from_dir(dir);
  return l;
}

TEST(Evaluator, MetricsOnAKnownBigramModel) {
  Bigram b = make_bigram();
  std::string dir = make_model(b, "bigram");
  auto m = load(dir + "/model");
  LanguageModel lm{m.config, m.weights, *m.tok};
  EvalOptions opt;
  opt.quiet = true;
  opt.batch_size = 2;
  opt.keep_samples = true;

  // multiple_choice: " x" (1 byte) vs " xyyy" (4 bytes) after "Q:".
  write_text(dir + "/mc.jsonl",
             "{\"q\": \"Q\", \"c\": [\"x\", \"xyyy\"], \"g\": 1}\n{\"q\": \"Q\", \"c\": [\"x\", \"xyyy\"], \"g\": 0}\n"
             "{\"q\": \"R\", \"c\": [\"ab\", \"b\"], \"g\": 0}\n");
  write_text(dir + "/mc.yaml", "type: multiple_choice\ndata: mc.jsonl\nprompt: \"{{q}}:\"\ntarget: \"{{g}}\"\nchoices: c\n");
  auto mc = evaluate_task(lm, TaskSpec::load(dir + "/mc.yaml"), opt);
  double ll_x = b.ll(": x"), ll_xyyy = b.ll(": xyyy");
  ASSERT_EQ(mc.samples.size(), 3u);
  EXPECT_NEAR(mc.samples[0]["log_likelihoods"][0].get<double>(), ll_x, 1e-4);
  EXPECT_NEAR(mc.samples[0]["log_likelihoods"][1].get<double>(), ll_xyyy, 1e-4);
  EXPECT_NEAR(mc.samples[2]["log_likelihoods"][0].get<double>(), b.ll(": ab"), 1e-4);
  auto pick = [](double a, double c) { return a >= c ? 0 : 1; };
  int pred = pick(ll_x, ll_xyyy), pred_norm = pick(ll_x / 1, ll_xyyy / 4);
  int pred2 = pick(b.ll(": ab"), b.ll(": b")), pred2_norm = pick(b.ll(": ab") / 2, b.ll(": b") / 1);
  ASSERT_NE(pred, pred_norm);  // the toy case separates acc from acc_norm
  double acc = ((pred == 1) + (pred == 0) + (pred2 == 0)) / 3.0;
  double acc_norm = ((pred_norm == 1) + (pred_norm == 0) + (pred2_norm == 0)) / 3.0;
  EXPECT_NEAR(mc.metric("acc"), acc, 1e-12);
  EXPECT_NEAR(mc.metric("acc_norm"), acc_norm, 1e-12);

  // generate: "za" -> greedy b, c, newline (stop). Targets "bc" (hit) and "bd" (miss).
  write_text(dir + "/gen.jsonl", "{\"p\": \"za\", \"t\": \"bc\"}\n{\"p\": \"a\", \"t\": \"bd\"}\n");
  write_text(dir + "/gen.json", R"({"type": "generate", "data": "gen.jsonl", "prompt": "{{p}}", "target": "{{t}}",
                                     "until": ["\n"], "max_new_tokens": 8})");
  auto gen = evaluate_task(lm, TaskSpec::load(dir + "/gen.json"), opt);
  EXPECT_EQ(gen.samples[0]["prediction"], "bc");
  EXPECT_EQ(gen.samples[1]["prediction"], "bc");
  EXPECT_NEAR(gen.metric("exact_match"), 0.5, 1e-12);

  // perplexity: no BOS, so the first byte is context only.
  write_text(dir + "/ppl.jsonl", "{\"text\": \"abc xy\"}\n{\"text\": \"xyyy\"}\n");
  write_text(dir + "/ppl.yaml", "type: perplexity\ndata: ppl.jsonl\n");
  auto ppl = evaluate_task(lm, TaskSpec::load(dir + "/ppl.yaml"), opt);
  double ll = b.ll("abc xy") + b.ll("xyyy");
  // Log-likelihoods are summed f32 values: compare perplexities relatively.
  EXPECT_NEAR(ppl.metric("token_perplexity"), std::exp(-ll / 8), 1e-5 * std::exp(-ll / 8));
  EXPECT_NEAR(ppl.metric("word_perplexity"), std::exp(-ll / 3), 1e-5 * std::exp(-ll / 3));
  EXPECT_NEAR(ppl.metric("byte_perplexity"), std::exp(-ll / 10), 1e-5 * std::exp(-ll / 10));
  EXPECT_NEAR(ppl.metric("bits_per_byte"), -ll / 10 / std::log(2.0), 1e-4);

  // --limit takes the first documents.
  opt.limit = 1;
  EXPECT_NEAR(evaluate_task(lm, TaskSpec::load(dir + "/gen.json"), opt).metric("exact_match"), 1.0, 1e-12);
  std::filesystem::remove_all(dir);
}

TEST(Evaluator, TextWindowsScorePositionsTwoOnward) {
  Bigram b = make_bigram();
  std::string dir = make_model(b, "text");
  auto m = load(dir + "/model");
  std::string text = "abcabxyyyq";
  std::vector<int64_t> ids(text.begin(), text.end());
  auto r = evaluate_text(m.config, m.weights, ids, 4, 2, true);
  // Windows "abca" "bxyy" "yq": 3 + 3 + 1 scored tokens, pairs inside each window only.
  double nll = -(b.ll("abca") + b.ll("bxyy") + b.ll("yq"));
  EXPECT_EQ(r.tokens, 7);
  EXPECT_EQ(r.windows, 3);
  EXPECT_NEAR(r.nll, nll, 1e-4);
  EXPECT_NEAR(r.ppl(), std::exp(nll / 7), 1e-5 * std::exp(nll / 7));

  // The same through the CLI, with --json.
  write_text(dir + "/t.txt", text);
  std::string out = dir + "/out.json";
  std::string cmd = std::string(AMALGAM_BINARY) + " eval " + dir + "/model --text " + dir +
                    "/t.txt --context 4 --threads 1 --json --quiet > " + out;
  ASSERT_EQ(testing_model::run(cmd), 0) << cmd;
  std::ifstream in(out);
  auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["tokens"], 7);
  EXPECT_NEAR(j["nll"].get<double>(), nll, 1e-4);
  EXPECT_NEAR(j["ppl"].get<double>(), std::exp(nll / 7), 1e-5 * std::exp(nll / 7));
  std::filesystem::remove_all(dir);
}

TEST(Evaluator, CliTasksJsonSamplesAndErrors_slow) {
  Bigram b = make_bigram();
  std::string dir = make_model(b, "cli");
  write_text(dir + "/gen.jsonl", "{\"p\": \"za\", \"t\": \"bc\"}\n{\"p\": \"a\", \"t\": \"bd\"}\n");
  write_text(dir + "/gen.json", R"({"type": "generate", "data": "gen.jsonl", "prompt": "{{p}}", "target": "{{t}}",
                                     "until": ["\n"], "max_new_tokens": 8})");
  std::string bin = AMALGAM_BINARY;
  std::string cmd = bin + " eval " + dir + "/model --tasks gen --task-dir " + dir + " --json --quiet --log-samples " +
                    dir + "/samples.jsonl > " + dir + "/out.json";
  ASSERT_EQ(testing_model::run(cmd), 0) << cmd;
  std::ifstream in(dir + "/out.json");
  auto j = nlohmann::json::parse(in);
  EXPECT_NEAR(j["tasks"]["gen"]["metrics"]["exact_match"].get<double>(), 0.5, 1e-12);
  auto samples = read_jsonl(dir + "/samples.jsonl");
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_EQ(samples[0].fields["prediction"], "bc");
  EXPECT_EQ(samples[0].fields["task"], "gen");

  // Table output names the task and metric.
  cmd = bin + " eval " + dir + "/model --tasks " + dir + "/gen.json --quiet > " + dir + "/table.txt";
  ASSERT_EQ(testing_model::run(cmd), 0);
  std::ifstream tin(dir + "/table.txt");
  std::string table((std::istreambuf_iterator<char>(tin)), {});
  EXPECT_NE(table.find("exact_match"), std::string::npos) << table;
  EXPECT_NE(table.find("0.5000"), std::string::npos) << table;

  // Malformed JSONL: exit 3 with file:line.
  write_text(dir + "/gen.jsonl", "{\"p\": \"za\", \"t\": \"bc\"}\n{\"p\": \"a\" \"t\": \"bd\"}\n");
  cmd = bin + " eval " + dir + "/model --tasks " + dir + "/gen.json --quiet 2> " + dir + "/err.txt";
  EXPECT_EQ(WEXITSTATUS(testing_model::run(cmd)), 3);
  std::ifstream ein(dir + "/err.txt");
  std::string err((std::istreambuf_iterator<char>(ein)), {});
  EXPECT_NE(err.find(dir + "/gen.jsonl:2"), std::string::npos) << err;

  // No tokenizer: a clear error naming the directory.
  std::filesystem::remove(dir + "/model/tokenizer.json");
  write_text(dir + "/gen.jsonl", "{\"p\": \"za\", \"t\": \"bc\"}\n");
  cmd = bin + " eval " + dir + "/model --tasks " + dir + "/gen.json --quiet 2> " + dir + "/err.txt";
  EXPECT_EQ(WEXITSTATUS(testing_model::run(cmd)), 3);
  std::ifstream ein2(dir + "/err.txt");
  err.assign((std::istreambuf_iterator<char>(ein2)), {});
  EXPECT_NE(err.find("no tokenizer"), std::string::npos) << err;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace amalgam
