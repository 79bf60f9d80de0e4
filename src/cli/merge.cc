// `amalgam merge RECIPE.yaml OUT_DIR [options]`: the mergekit-yaml equivalent. Parses the
// recipe, plans every tensor (all input errors surface here), then streams the merge
// through exec/ into a staging directory that is renamed into place. SIGINT/SIGTERM stop
// the merge between chunks and remove the staging directory.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "exec/cancel.h"
#include "exec/executor.h"
#include "exec/scheduler.h"
#include "io/safetensors_writer.h"
#include "plan/plan.h"
#include "recipe/recipe.h"
#include "util/error.h"
#include "util/heap.h"
#include "util/progress.h"

namespace amalgam::cli {
namespace {

// Elements per chunk unless --chunk-size says otherwise: 4 reduction blocks keep a
// worker's f32 buffers (inputs + output) inside L2/L3 while amortizing per-chunk work.
constexpr uint64_t kDefaultChunk = 1 << 18;
constexpr uint64_t kMinChunk = 1 << 16;  // one reduction block: smaller buys nothing

struct MergeArgs {
  std::string recipe, out_dir, shard_size = "5B", memory_limit;
  bool copy_tokenizer = true, allow_crimes = false, model_card = true;
  bool cuda = false, lazy_unpickle = false, low_cpu_memory = false;
  uint64_t seed = 0, chunk = 0;
  int threads = 0;
  bool dry_run = false, force = false, json = false, quiet = false, fsync = false;
};

std::string gb(double bytes) {
  if (bytes >= 1e9) return fmt::format("{:.2f} GB", bytes / 1e9);
  if (bytes >= 1e6) return fmt::format("{:.1f} MB", bytes / 1e6);
  return fmt::format("{:.1f} KB", bytes / 1e3);
}

void on_signal(int signo) {
  // Async-signal-safe: two atomic stores. SA_RESETHAND makes a second signal fatal.
  set_cancel_signal(signo);
  request_cancel();
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// Halves the chunk until the estimate fits; Error(Usage) if even one block does not.
uint64_t fit_memory(const MergePlan& plan, ExecOptions o, uint64_t limit) {
  while (true) {
    uint64_t need = estimate_memory(plan, o).peak_bytes;
    if (need <= limit) return o.chunk_elements;
    if (o.chunk_elements <= kMinChunk)
      fail(ErrorKind::Usage,
           "--memory-limit {}: this merge needs at least ~{} with {} thread(s); "
           "raise the limit or lower --threads",
           gb(limit), gb(need), o.threads);
    o.chunk_elements = std::max(kMinChunk, o.chunk_elements / 2);
  }
}

// Rough time from the input bytes at per-thread rates measured on the 2-core development
// machine (docs/merge.md, Qwen2-0.5B, warm page cache, 20:38 run): element-wise methods
// ~5 GB/s per thread, methods with statistics passes ~1.2 (ties, dare_ties, breadcrumbs,
// model_stock: 2.3-3.3 GB/s on 2 threads), della ~0.4.
double estimated_seconds(const MergePlan& plan, int threads) {
  double seconds = 0;
  for (const auto& pt : plan.tensors) {
    if (!pt.method) continue;
    const std::string_view m = pt.method->name();
    double rate = 5e9;
    if (m == "della" || m == "della_linear") rate = 0.4e9;
    else if (pt.method->create(pt.job)->stat_passes() > 0) rate = 1.2e9;
    seconds += double(merge_input_bytes(pt)) / rate;
  }
  return seconds / std::max(1, threads);
}

nlohmann::json plan_summary(const MergePlan& plan, const ModelSet& models, const ExecOptions& o,
                            uint64_t peak) {
  std::map<std::string, size_t> methods;
  for (const auto& t : plan.tensors) methods[t.method ? std::string(t.method->name()) : "?"]++;
  nlohmann::json j;
  j["tensors"] = plan.tensors.size();
  j["methods"] = methods;
  std::vector<std::string> refs;
  for (size_t i = 0; i < models.size(); ++i) refs.push_back(models.at(i).ref());
  j["models"] = refs;
  j["input_bytes"] = plan.input_bytes();
  j["output_bytes"] = plan.output_bytes();
  j["threads"] = o.threads;
  j["chunk_elements"] = o.chunk_elements;
  j["estimated_peak_memory_bytes"] = peak;
  j["estimated_seconds"] = estimated_seconds(plan, o.threads);
  if (!plan.vocabulary.is_null()) j["vocabulary"] = plan.vocabulary;
  j["warnings"] = plan.warnings;
  return j;
}

void print_dry_run(const nlohmann::json& j, const std::string& out_dir) {
  fmt::print("plan for {}: {} tensors\n", out_dir, j["tensors"].get<size_t>());
  for (auto& [m, n] : j["methods"].items()) fmt::print("  method {}: {} tensors\n", m, n.get<size_t>());
  for (auto& m : j["models"]) fmt::print("  input {}\n", m.get<std::string>());
  if (j.contains("vocabulary")) {
    const auto& v = j["vocabulary"];
    fmt::print("  tokenizer {}: {} tokens ({} appended), {}\n", v["source"].get<std::string>(),
               v["tokens"].get<int64_t>(), v["appended"].get<int64_t>(),
               v["remapped"].get<bool>() ? "embeddings re-mapped token by token"
                                         : "every model has each token at its id: embeddings as stored");
  }
  fmt::print("  reads {}, writes {}\n", gb(j["input_bytes"].get<double>()),
             gb(j["output_bytes"].get<double>()));
  fmt::print("  estimated peak memory {} ({} threads x {} elements per chunk)\n",
             gb(j["estimated_peak_memory_bytes"].get<double>()), j["threads"].get<int>(),
             j["chunk_elements"].get<uint64_t>());
  fmt::print("  estimated time ~{:.0f} s (rough)\n", j["estimated_seconds"].get<double>());
}

void run(const MergeArgs& a) {
  set_quiet(a.quiet);
  if (a.cuda) report_warning("--cuda ignored: amalgam merges on the CPU, streaming");
  if (a.lazy_unpickle) report_warning("--lazy-unpickle ignored: safetensors are memory-mapped");
  if (a.low_cpu_memory) report_warning("--low-cpu-memory ignored: memory is always bounded");
  if (a.threads < 0) fail(ErrorKind::Usage, "--threads must be >= 1");

  // Refuse an existing OUT_DIR before any work (execute_plan checks again, atomically).
  if (!a.dry_run && !a.force && std::filesystem::exists(a.out_dir))
    fail(ErrorKind::Usage, "{}: output directory already exists (use --force to replace it)",
         a.out_dir);
  Recipe recipe = parse_recipe_file(a.recipe);
  ModelSet models;
  PlanOptions po;
  po.seed = a.seed;
  po.allow_crimes = a.allow_crimes;
  MergePlan plan = make_plan(recipe, models, po);
  for (const auto& w : plan.warnings) report_warning(w);

  ExecOptions o;
  o.threads = a.threads > 0 ? a.threads : default_threads();
  o.chunk_elements = a.chunk > 0 ? a.chunk : kDefaultChunk;
  o.max_shard_bytes = parse_byte_size(a.shard_size);
  o.copy_tokenizer = a.copy_tokenizer;
  o.write_model_card = a.model_card;
  o.force = a.force;
  o.durable = a.fsync;
  if (!a.memory_limit.empty())
    o.chunk_elements = fit_memory(plan, o, parse_byte_size(a.memory_limit));
  uint64_t peak = estimate_memory(plan, o).peak_bytes;

  if (a.dry_run) {
    nlohmann::json j = plan_summary(plan, models, o, peak);
    j["out_dir"] = a.out_dir;
    j["written"] = false;
    if (a.json) fmt::print("{}\n", j.dump(2));
    else print_dry_run(j, a.out_dir);
    return;
  }

  auto progress = std::make_unique<Progress>("merge", plan.input_bytes(), "B", a.quiet || a.json);
  o.progress = [&](size_t done, size_t total, uint64_t bytes, uint64_t) {
    progress->set(bytes, fmt::format(" {}/{} tensors", done, total));
  };
  clear_cancel();
  install_signal_handlers();
  // Per-tensor selection state (histograms, samples, mask bits) is allocated and freed
  // tensor after tensor: kept in the heap, breadcrumbs took 70-100K page faults fewer.
  retain_freed_heap_memory();
  ExecResult r;
  try {
    r = execute_plan(plan, models, recipe, a.out_dir, o);
  } catch (const Error&) {
    progress->abandon();  // no "done" line above the error
    if (isatty(STDERR_FILENO)) fmt::print(stderr, "\r\033[K");  // clear the half-drawn bar
    if (int sig = cancel_signal()) {
      // The staging directory is gone (unwinding removed it); die of the signal as the
      // shell expects, so `merge && next` stops.
      fmt::print(stderr, "amalgam: merge interrupted; nothing was written to {}\n", a.out_dir);
      signal(sig, SIG_DFL);
      raise(sig);
    }
    throw;
  }
  progress->finish();
  for (const auto& w : r.warnings) report_warning(w);
  double rate = r.seconds > 0 ? plan.input_bytes() / r.seconds : 0;
  if (a.json) {
    nlohmann::json j = plan_summary(plan, models, o, peak);
    j["out_dir"] = a.out_dir;
    j["written"] = true;
    j["seconds"] = r.seconds;
    j["input_bytes_per_second"] = rate;
    j["bytes_read"] = r.bytes_read;
    j["bytes_written"] = r.bytes_written;
    j["files"] = r.files;
    j["merge_warnings"] = r.warnings;
    fmt::print("{}\n", j.dump(2));
  } else if (!a.quiet) {
    fmt::print("merged {} tensors into {}: read {}, wrote {} in {} files, {:.1f} s ({}/s)\n",
               plan.tensors.size(), a.out_dir, gb(plan.input_bytes()), gb(r.bytes_written),
               r.files.size(), r.seconds, gb(rate));
  }
}

Command merge_command(10, "merge", [](CLI::App& app) {
  auto args = std::make_shared<MergeArgs>();
  CLI::App* c = app.add_subcommand("merge", "Merge models as a mergekit recipe says (streaming)");
  c->add_option("RECIPE", args->recipe, "mergekit YAML recipe")->required();
  c->add_option("OUT_DIR", args->out_dir, "Output model directory")->required();
  c->add_option("--out-shard-size", args->shard_size, "Bytes per shard, K/M/B suffixes (5B)");
  c->add_flag("--copy-tokenizer,!--no-copy-tokenizer", args->copy_tokenizer,
              "Copy the tokenizer of the base (or first) model (default on)");
  c->add_flag("--allow-crimes", args->allow_crimes, "Allow merging different architectures");
  c->add_flag("--write-model-card,!--no-write-model-card", args->model_card,
              "Write README.md with the recipe (default on)");
  c->add_option("--random-seed", args->seed, "Seed of DARE/DELLA masks (default 0)");
  c->add_flag("--cuda", args->cuda, "Accepted for mergekit compatibility; ignored");
  c->add_flag("--lazy-unpickle", args->lazy_unpickle, "Accepted; ignored");
  c->add_flag("--low-cpu-memory", args->low_cpu_memory, "Accepted; ignored");
  c->add_option("-j,--threads,--num-threads", args->threads, "Worker threads (default: all cores)");
  c->add_option("--memory-limit", args->memory_limit,
                "Peak memory budget, e.g. 2G: picks the chunk size to fit");
  c->add_option("--chunk-size", args->chunk, "Elements per chunk (advanced)");
  c->add_flag("--dry-run", args->dry_run, "Print the plan and estimates; write nothing");
  c->add_flag("--force", args->force, "Replace an existing OUT_DIR");
  c->add_flag("--fsync", args->fsync,
              "Flush the output to disk before it appears at OUT_DIR (survives a power loss; "
              "bound by the disk's write speed)");
  c->add_flag("--json", args->json, "Machine-readable summary on stdout");
  c->add_flag("--quiet,-q", args->quiet, "No progress or notes");
  c->callback([args] { run(*args); });
});

}  // namespace
}  // namespace amalgam::cli
