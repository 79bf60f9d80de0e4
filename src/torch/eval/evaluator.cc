// Task evaluation on an in-memory model; see evaluator.h.
#include "torch/eval/evaluator.h"

#include <chrono>
#include <cmath>
#include <numeric>

#include "torch/eval/metrics.h"
#include "torch/eval/scorer.h"
#include "util/error.h"
#include "util/progress.h"

namespace amalgam {
namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<int64_t> encode(const Tokenizer& tok, const std::string& text) {
  auto ids = tok.encode(text, false);
  return std::vector<int64_t>(ids.begin(), ids.end());
}

// The token that stands before the first one when there is no context (lm-eval's
// prefix_token_id): BOS, else EOS; none for a tokenizer and config without either.
std::optional<int64_t> prefix_token(const Tokenizer& tok, const ModelConfig& config) {
  if (auto b = tok.bos_id()) return *b;
  if (config.bos_token_id) return *config.bos_token_id;
  if (auto e = tok.eos_id()) return *e;
  return config.eos_token_id;
}

TaskResult run_perplexity(const LanguageModel& lm, const TaskSpec& spec, const std::vector<TaskDoc>& docs,
                          const TaskRenderer& renderer, const EvalOptions& opt) {
  int64_t max_len = model_context_length(lm.config);
  auto prefix = prefix_token(lm.tokenizer, lm.config);
  std::vector<LoglikelihoodRequest> requests;
  std::vector<size_t> owner;  // document of each request
  std::vector<std::string> texts;
  PerplexityTotals totals;
  for (size_t d = 0; d < docs.size(); ++d) {
    std::string text = renderer.render(docs[d], d, false).text;
    auto ids = encode(lm.tokenizer, text);
    totals.words += count_words(text);
    totals.bytes += static_cast<int64_t>(text.size());
    texts.push_back(text);
    // Rolling windows of max_len predicted tokens, each conditioned on the token before it
    // (the prefix token for the first window; without one, the first token is context only).
    size_t first = prefix ? 0 : 1;
    for (size_t at = first; at < ids.size(); at += max_len) {
      LoglikelihoodRequest r;
      r.context = {at == 0 ? *prefix : ids[at - 1]};
      r.continuation.assign(ids.begin() + at, ids.begin() + std::min(ids.size(), at + max_len));
      totals.tokens += static_cast<int64_t>(r.continuation.size());
      requests.push_back(std::move(r));
      owner.push_back(d);
    }
  }
  Progress progress(spec.name, requests.size(), "windows", opt.quiet);
  auto scored = score_loglikelihood(lm.config, lm.weights, requests, opt.batch_size, &progress);
  progress.finish();
  std::vector<double> doc_ll(docs.size(), 0.0);
  for (size_t i = 0; i < scored.size(); ++i) doc_ll[owner[i]] += scored[i].log_likelihood;
  totals.log_likelihood = std::accumulate(doc_ll.begin(), doc_ll.end(), 0.0);
  TaskResult res;
  res.metrics = {{"word_perplexity", totals.word_perplexity()},
                 {"byte_perplexity", totals.byte_perplexity()},
                 {"bits_per_byte", totals.bits_per_byte()},
                 {"token_perplexity", totals.token_perplexity()}};
  if (opt.keep_samples)
    for (size_t d = 0; d < docs.size(); ++d)
      res.samples.push_back({{"doc", d}, {"line", docs[d].line}, {"text", texts[d]}, {"log_likelihood", doc_ll[d]}});
  return res;
}

TaskResult run_multiple_choice(const LanguageModel& lm, const TaskSpec& spec, const std::vector<TaskDoc>& docs,
                               const TaskRenderer& renderer, bool pool_is_data, const EvalOptions& opt) {
  std::vector<RenderedDoc> rendered;
  std::vector<LoglikelihoodRequest> requests;
  for (size_t d = 0; d < docs.size(); ++d) {
    rendered.push_back(renderer.render(docs[d], d, pool_is_data));
    for (const auto& choice : rendered.back().choices) {
      auto [ctx, cont] = encode_pair(lm.tokenizer, lm.config, rendered.back().context, spec.target_delimiter + choice);
      requests.push_back({std::move(ctx), std::move(cont)});
    }
  }
  Progress progress(spec.name, requests.size(), "choices", opt.quiet);
  auto scored = score_loglikelihood(lm.config, lm.weights, requests, opt.batch_size, &progress);
  progress.finish();
  TaskResult res;
  double acc = 0, acc_norm = 0;
  size_t at = 0;
  for (size_t d = 0; d < docs.size(); ++d) {
    const auto& r = rendered[d];
    std::vector<double> lls;
    for (size_t c = 0; c < r.choices.size(); ++c) lls.push_back(scored[at++].log_likelihood);
    auto o = score_choices(lls, r.choices, r.gold);
    acc += o.acc;
    acc_norm += o.acc_norm;
    if (opt.keep_samples)
      res.samples.push_back({{"doc", d}, {"line", docs[d].line}, {"context", r.context}, {"choices", r.choices},
                             {"gold", r.gold}, {"log_likelihoods", lls}, {"pred", o.pred},
                             {"acc", o.acc}, {"acc_norm", o.acc_norm}});
  }
  double n = std::max<double>(1, docs.size());
  res.metrics = {{"acc", acc / n}, {"acc_norm", acc_norm / n}};
  return res;
}

TaskResult run_generate(const LanguageModel& lm, const TaskSpec& spec, const std::vector<TaskDoc>& docs,
                        const TaskRenderer& renderer, bool pool_is_data, const EvalOptions& opt) {
  std::vector<RenderedDoc> rendered;
  std::vector<std::vector<int64_t>> prompts;
  auto prefix = prefix_token(lm.tokenizer, lm.config);
  for (size_t d = 0; d < docs.size(); ++d) {
    rendered.push_back(renderer.render(docs[d], d, pool_is_data));
    auto ids = encode(lm.tokenizer, rendered.back().context);
    if (ids.empty()) {
      if (!prefix) fail(ErrorKind::Input, "{}: empty prompt and no BOS token to start from", spec.spec_path);
      ids = {*prefix};
    }
    // Keep room for the answer inside the model's context: cut the prompt from the left.
    int64_t room = model_context_length(lm.config) - spec.max_new_tokens;
    if (room > 0 && static_cast<int64_t>(ids.size()) > room) ids.erase(ids.begin(), ids.end() - room);
    prompts.push_back(std::move(ids));
  }
  std::optional<int64_t> eos = lm.tokenizer.eos_id() ? std::optional<int64_t>(*lm.tokenizer.eos_id())
                                                      : lm.config.eos_token_id;
  std::vector<size_t> order(docs.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return prompts[a].size() > prompts[b].size(); });
  std::vector<std::string> predictions(docs.size());
  Progress progress(spec.name, docs.size(), "docs", opt.quiet);
  size_t bs = static_cast<size_t>(std::max<int64_t>(1, opt.batch_size));
  auto decode = [&](const std::vector<int64_t>& ids) {
    return lm.tokenizer.decode(std::vector<int32_t>(ids.begin(), ids.end()), true);
  };
  for (size_t start = 0; start < order.size(); start += bs) {
    size_t end = std::min(order.size(), start + bs);
    std::vector<std::vector<int64_t>> batch;
    for (size_t i = start; i < end; ++i) batch.push_back(prompts[order[i]]);
    auto stop = [&](size_t, const std::vector<int64_t>& gen) {
      std::string text = decode(gen);
      for (const auto& s : spec.until)
        if (!s.empty() && text.find(s) != std::string::npos) return true;
      return false;
    };
    auto out = generate_greedy(lm.config, lm.weights, batch, spec.max_new_tokens, eos, stop);
    for (size_t i = start; i < end; ++i) predictions[order[i]] = cut_at_stop(decode(out[i - start]), spec.until);
    progress.advance(end - start);
  }
  progress.finish();
  TaskResult res;
  double em = 0;
  for (size_t d = 0; d < docs.size(); ++d) {
    double m = exact_match(predictions[d], rendered[d].target);
    em += m;
    if (opt.keep_samples)
      res.samples.push_back({{"doc", d}, {"line", docs[d].line}, {"prompt", rendered[d].context},
                             {"target", rendered[d].target}, {"prediction", predictions[d]}, {"exact_match", m}});
  }
  res.metrics = {{"exact_match", em / std::max<double>(1, docs.size())}};
  return res;
}

}  // namespace

double TaskResult::metric(const std::string& key) const {
  for (const auto& [k, v] : metrics)
    if (k == key) return v;
  fail(ErrorKind::Internal, "task {}: no metric '{}'", name, key);
}

double TextPerplexity::ppl() const { return std::exp(nll / std::max<int64_t>(1, tokens)); }

std::pair<std::vector<int64_t>, std::vector<int64_t>> encode_pair(const Tokenizer& tok, const ModelConfig& config,
                                                                  const std::string& context,
                                                                  const std::string& continuation) {
  std::string ctx = context, cont = continuation;
  size_t keep = ctx.find_last_not_of(" \t\n\r\f\v");
  keep = keep == std::string::npos ? 0 : keep + 1;
  cont = ctx.substr(keep) + cont;
  ctx.resize(keep);
  if (ctx.empty()) {
    auto prefix = prefix_token(tok, config);
    auto ids = encode(tok, cont);
    if (prefix) return {{*prefix}, ids};
    if (ids.size() < 2) fail(ErrorKind::Input, "cannot score '{}' without context or a BOS token", cont);
    return {{ids[0]}, std::vector<int64_t>(ids.begin() + 1, ids.end())};
  }
  auto whole = encode(tok, ctx + cont);
  auto ctx_ids = encode(tok, ctx);
  size_t n = std::min(ctx_ids.size(), whole.size());
  return {std::vector<int64_t>(whole.begin(), whole.begin() + n), std::vector<int64_t>(whole.begin() + n, whole.end())};
}

TaskResult evaluate_task(const LanguageModel& lm, const TaskSpec& spec, const EvalOptions& opt) {
  auto start = Clock::now();
  auto all = read_jsonl(spec.data_path);
  std::vector<TaskDoc> docs = all;
  if (opt.limit && static_cast<int64_t>(docs.size()) > *opt.limit) docs.resize(*opt.limit);
  std::vector<TaskDoc> pool;
  bool pool_is_data = !spec.fewshot_path;
  if (spec.num_fewshot > 0) pool = spec.fewshot_path ? read_jsonl(*spec.fewshot_path) : all;
  TaskRenderer renderer(spec, &pool);
  TaskResult res;
  switch (spec.type) {
    case TaskType::Perplexity: res = run_perplexity(lm, spec, docs, renderer, opt); break;
    case TaskType::MultipleChoice: res = run_multiple_choice(lm, spec, docs, renderer, pool_is_data, opt); break;
    case TaskType::Generate: res = run_generate(lm, spec, docs, renderer, pool_is_data, opt); break;
  }
  res.name = spec.name;
  res.type = spec.type;
  res.documents = static_cast<int64_t>(docs.size());
  res.seconds = since(start);
  for (auto& s : res.samples) s["task"] = spec.name;
  return res;
}

TextPerplexity evaluate_text(const ModelConfig& config, const WeightMap& weights, const std::vector<int64_t>& ids,
                             int64_t context, int64_t batch_size, bool quiet) {
  auto start = Clock::now();
  if (context < 2) fail(ErrorKind::Usage, "--context must be at least 2 tokens (got {})", context);
  std::vector<LoglikelihoodRequest> requests;
  TextPerplexity out;
  for (size_t at = 0; at < ids.size(); at += context) {
    size_t end = std::min(ids.size(), at + static_cast<size_t>(context));
    ++out.windows;
    if (end - at < 2) continue;  // a lone last token has nothing to predict
    requests.push_back({{ids[at]}, std::vector<int64_t>(ids.begin() + at + 1, ids.begin() + end)});
    out.tokens += static_cast<int64_t>(end - at - 1);
  }
  Progress progress("text", requests.size(), "windows", quiet);
  for (const auto& r : score_loglikelihood(config, weights, requests, batch_size, &progress)) out.nll -= r.log_likelihood;
  progress.finish();
  out.seconds = since(start);
  return out;
}

std::string format_results_table(const std::vector<TaskResult>& results) {
  std::string out = fmt::format("{:<24} {:<16} {:>6}  {:<18} {:>10}\n", "task", "type", "n", "metric", "value");
  for (const auto& r : results)
    for (size_t i = 0; i < r.metrics.size(); ++i)
      out += fmt::format("{:<24} {:<16} {:>6}  {:<18} {:>10.4f}\n", i ? "" : r.name, i ? "" : task_type_name(r.type),
                         i ? "" : std::to_string(r.documents), r.metrics[i].first, r.metrics[i].second);
  return out;
}

nlohmann::json results_to_json(const std::vector<TaskResult>& results) {
  auto tasks = nlohmann::json::object();
  for (const auto& r : results) {
    nlohmann::json m = nlohmann::json::object();
    for (const auto& [k, v] : r.metrics) m[k] = v;
    tasks[r.name] = {{"type", task_type_name(r.type)}, {"documents", r.documents}, {"metrics", m},
                     {"seconds", r.seconds}};
  }
  return {{"tasks", tasks}};
}

}  // namespace amalgam
