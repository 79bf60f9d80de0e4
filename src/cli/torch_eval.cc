// `amalgam eval MODEL --tasks A,B | --text FILE`: loads a model directory (or org/name in
// the Hugging Face cache) with its tokenizer and runs task specs or raw-text perplexity.
// Thin: everything is in src/torch/eval (evaluator.h).
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "cli/command.h"
#include "io/model_dir.h"
#include "torch/eval/evaluator.h"
#include "torch/eval/scorer.h"
#include "util/error.h"
#include "util/progress.h"

namespace amalgam::cli {
namespace {

namespace fs = std::filesystem;

struct EvalArgs {
  std::string model, tasks, task_dir, text_file, dtype = "f32", log_samples;
  int64_t limit = -1, batch_size = 8, context = 0;
  int threads = 0;
  bool json = false, quiet = false;
};

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

// A task is a spec path, or a name looked up in --task-dir as NAME.yaml/.yml/.json.
std::string resolve_task(const std::string& task, const std::string& task_dir) {
  if (fs::is_regular_file(task)) return task;
  if (!task_dir.empty())
    for (const char* ext : {".yaml", ".yml", ".json"}) {
      fs::path p = fs::path(task_dir) / (task + ext);
      if (fs::is_regular_file(p)) return p.string();
    }
  fail(ErrorKind::Usage, "task '{}': no such spec file{}", task,
       task_dir.empty() ? std::string(" (give a path, or --task-dir)") : fmt::format(" and no {0}/{1}.yaml, {0}/{1}.yml or {0}/{1}.json", task_dir, task));
}

std::unique_ptr<Tokenizer> open_tokenizer(const ModelDir& model) {
  fs::path dir = model.path();
  if (!fs::exists(dir / "tokenizer.json") && !fs::exists(dir / "tokenizer.model"))
    fail(ErrorKind::Input, "{}: no tokenizer (tokenizer.json or tokenizer.model) in the model directory; "
         "copy the base model's tokenizer files there", model.path());
  return Tokenizer::from_dir(model.path());
}

void run(const EvalArgs& a) {
  if (a.tasks.empty() == a.text_file.empty()) fail(ErrorKind::Usage, "eval: give exactly one of --tasks or --text");
  if (a.dtype != "f32" && a.dtype != "bf16") fail(ErrorKind::Usage, "eval: --dtype must be f32 or bf16");
  if (a.batch_size < 1) fail(ErrorKind::Usage, "eval: --batch-size must be at least 1");
  set_quiet(a.quiet);
  configure_torch_threads(a.threads > 0 ? a.threads : default_threads());
  std::vector<TaskSpec> specs;  // parse every spec before the (slow) model load
  for (const auto& t : split_commas(a.tasks)) specs.push_back(TaskSpec::load(resolve_task(t, a.task_dir)));
  auto model = ModelDir::open(a.model);
  auto config = ModelConfig::from_json(model->config(), model->path() + "/config.json");
  auto tokenizer = open_tokenizer(*model);
  auto weights = load_weights(*model, a.dtype == "bf16" ? torch::kBFloat16 : torch::kFloat32);
  fuse_projections(config, weights);

  if (!a.text_file.empty()) {
    std::ifstream in(a.text_file, std::ios::binary);
    if (!in) fail(ErrorKind::Input, "{}: cannot open", a.text_file);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    auto ids32 = tokenizer->encode(text, false);
    std::vector<int64_t> ids(ids32.begin(), ids32.end());
    int64_t context = a.context > 0 ? a.context : model_context_length(config);
    auto r = evaluate_text(config, weights, ids, context, a.batch_size, a.quiet);
    double tps = r.seconds > 0 ? (r.tokens + r.windows) / r.seconds : 0;
    if (a.json) {
      nlohmann::json j = {{"tokens", r.tokens}, {"nll", r.nll}, {"ppl", r.ppl()}, {"windows", r.windows},
                          {"context", context}, {"seconds", r.seconds}, {"tokens_per_second", tps}};
      fmt::print("{}\n", j.dump(2));
    } else {
      fmt::print("{}: {} tokens scored in {} windows of {}: nll {:.4f} nats, ppl {:.4f} ({:.0f} tokens/s)\n",
                 a.text_file, r.tokens, r.windows, context, r.nll, r.ppl(), tps);
    }
    return;
  }
  EvalOptions opt;
  opt.batch_size = a.batch_size;
  if (a.limit >= 0) opt.limit = a.limit;
  opt.keep_samples = !a.log_samples.empty();
  opt.quiet = a.quiet;
  LanguageModel lm{config, weights, *tokenizer};
  std::vector<TaskResult> results;
  for (const auto& spec : specs) results.push_back(evaluate_task(lm, spec, opt));
  if (!a.log_samples.empty()) {
    std::ofstream out(a.log_samples, std::ios::binary);
    if (!out) fail(ErrorKind::Io, "{}: cannot write", a.log_samples);
    for (const auto& r : results)
      for (const auto& s : r.samples) out << s.dump() << "\n";
    if (!out) fail(ErrorKind::Io, "{}: write failed", a.log_samples);
  }
  if (a.json) {
    auto j = results_to_json(results);
    j["model"] = a.model;
    fmt::print("{}\n", j.dump(2));
  } else {
    fmt::print("{}", format_results_table(results));
  }
}

Command eval_command(50, [](CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand("eval", "Evaluate a model on tasks, or the perplexity of a text file");
  cmd->add_option("model", args->model, "Model directory, or org/name in the Hugging Face cache")->required();
  cmd->add_option("--tasks", args->tasks, "Comma-separated task specs (paths, or names in --task-dir)");
  cmd->add_option("--task-dir", args->task_dir, "Directory where task names are looked up");
  cmd->add_option("--text", args->text_file, "Perplexity of this raw text file instead of tasks");
  cmd->add_option("--context", args->context, "--text: window length in tokens (default: model context)");
  cmd->add_option("--limit", args->limit, "Evaluate only the first N documents of each task");
  cmd->add_option("--batch-size", args->batch_size, "Sequences per forward pass")->capture_default_str();
  cmd->add_option("--threads", args->threads, "Torch threads (default: all cores)");
  cmd->add_option("--dtype", args->dtype, "Compute dtype: f32 or bf16")->capture_default_str();
  cmd->add_option("--log-samples", args->log_samples, "Write one JSON line per document to FILE");
  cmd->add_flag("--json", args->json, "Print results as JSON");
  cmd->add_flag("--quiet", args->quiet, "No progress bar or warnings");
  cmd->callback([args] { run(*args); });
});

}  // namespace
}  // namespace amalgam::cli
