// `amalgam inspect MODEL... [--base B]`: summary of one model, compatibility of several,
// task-vector statistics against a base (see core/inspect/). Exit status 0 when the
// models are compatible, 1 when the report found an incompatibility, 2/3/5 on errors.
#include <memory>

#include <fmt/format.h>

#include "cli/command.h"
#include "inspect/summary.h"
#include "inspect/task_vectors.h"
#include "util/error.h"
#include "util/progress.h"

namespace amalgam::cli {
namespace {

struct InspectArgs {
  std::vector<std::string> models;
  std::string base;
  bool json = false;
  int threads = 0;
};

std::string human_count(double n) {
  if (n >= 1e9) return fmt::format("{:.2f}B", n / 1e9);
  if (n >= 1e6) return fmt::format("{:.1f}M", n / 1e6);
  if (n >= 1e3) return fmt::format("{:.1f}K", n / 1e3);
  return fmt::format("{:.0f}", n);
}

std::string human_bytes(double n) {
  if (n >= 1e9) return fmt::format("{:.2f} GB", n / 1e9);
  if (n >= 1e6) return fmt::format("{:.1f} MB", n / 1e6);
  if (n >= 1e3) return fmt::format("{:.1f} KB", n / 1e3);
  return fmt::format("{:.0f} B", n);
}

std::string dtypes_text(const inspect::ModelSummary& s) {
  std::string t;
  for (const auto& [d, n] : s.dtype_tensors)
    t += fmt::format("{}{} x{}", t.empty() ? "" : ", ", d, n);
  return t;
}

void print_one(const inspect::ModelSummary& s) {
  fmt::print("model          {}\n", s.ref);
  if (s.path != s.ref) fmt::print("path           {}\n", s.path);
  fmt::print("architecture   {}{}\n", s.architecture.empty() ? "(unknown)" : s.architecture,
             s.model_type.empty() ? "" : " (" + s.model_type + ")");
  fmt::print("parameters     {} ({})\n", human_count(s.params), s.params);
  fmt::print("tensors        {} ({} layers)\n", s.tensors, s.layers);
  for (const auto& [d, n] : s.dtype_tensors)
    fmt::print("dtype {:<8} {} tensors, {} params\n", d, n, human_count(s.dtype_params.at(d)));
  fmt::print("shards         {}\n", s.shards);
  fmt::print("bytes          {} tensor data, {} on disk\n", human_bytes(s.tensor_bytes),
             human_bytes(s.file_bytes));
  if (s.vocab_size) fmt::print("vocab size     {}\n", *s.vocab_size);
}

void print_table(const std::vector<inspect::ModelSummary>& all) {
  std::vector<std::vector<std::string>> rows{
      {"model", "architecture", "params", "tensors", "dtypes", "shards", "bytes", "vocab"}};
  for (const auto& s : all)
    rows.push_back({s.ref, s.architecture.empty() ? "-" : s.architecture, human_count(s.params),
                    std::to_string(s.tensors), dtypes_text(s), std::to_string(s.shards),
                    human_bytes(s.tensor_bytes), s.vocab_size ? std::to_string(*s.vocab_size) : "-"});
  std::vector<size_t> w(rows[0].size(), 0);
  for (const auto& r : rows)
    for (size_t k = 0; k < r.size(); ++k) w[k] = std::max(w[k], r[k].size());
  for (const auto& r : rows) {
    std::string line;
    for (size_t k = 0; k < r.size(); ++k) line += fmt::format("{:<{}}  ", r[k], w[k]);
    fmt::print("{}\n", line.substr(0, line.find_last_not_of(' ') + 1));
  }
}

void print_list(const char* what, const std::vector<std::string>& names) {
  if (names.empty()) return;
  std::string shown;
  for (size_t i = 0; i < names.size() && i < 5; ++i) shown += (i ? ", " : "") + names[i];
  fmt::print("  {} {}: {}{}\n", names.size(), what, shown, names.size() > 5 ? ", ..." : "");
}

void print_mismatches(const char* what, const std::vector<inspect::Mismatch>& v) {
  if (v.empty()) return;
  fmt::print("  {} {} mismatch(es):\n", v.size(), what);
  for (size_t i = 0; i < v.size() && i < 5; ++i)
    fmt::print("    {}: {} vs {}\n", v[i].tensor, v[i].reference, v[i].other);
  if (v.size() > 5) fmt::print("    ...\n");
}

void print_compat(const inspect::CompatReport& r) {
  fmt::print("\ncompatibility with {}: {}\n", r.reference,
             r.compatible() ? "compatible" : "INCOMPATIBLE");
  for (const auto& e : r.models) {
    const bool clean = e.compatible() && e.dtype.empty();
    fmt::print("{} {}{}\n", e.compatible() ? (clean ? "ok " : "ok*") : "NO ", e.ref,
               e.compatible() && !clean ? " (different dtypes: converted when merging)" : "");
    print_list("missing tensor(s)", e.missing);
    print_list("extra tensor(s)", e.extra);
    print_mismatches("shape", e.shape);
    print_mismatches("dtype", e.dtype);
    if (!e.vocab_matches)
      fmt::print("  vocab size {} vs {}\n", *e.vocab_size, *r.reference_vocab);
  }
}

void run(const InspectArgs& a) {
  std::vector<std::unique_ptr<ModelDir>> dirs;
  for (const auto& ref : a.models) dirs.push_back(ModelDir::open(ref));
  std::unique_ptr<ModelDir> base;
  if (!a.base.empty()) base = ModelDir::open(a.base);

  std::vector<inspect::ModelSummary> summaries;
  if (base) summaries.push_back(inspect::summarize(*base));
  for (const auto& d : dirs) summaries.push_back(inspect::summarize(*d));

  std::vector<const ModelDir*> all;
  if (base) all.push_back(base.get());
  for (const auto& d : dirs) all.push_back(d.get());
  std::optional<inspect::CompatReport> compat;
  if (all.size() >= 2) compat = inspect::check_compatibility(all);

  std::optional<inspect::TaskVectorReport> tv;
  if (base) {
    std::vector<const ModelDir*> models;
    for (const auto& d : dirs) models.push_back(d.get());
    inspect::TaskVectorOptions o;
    o.threads = a.threads > 0 ? a.threads : default_threads();
    uint64_t total = base->tensor_bytes();
    for (const auto* m : models) total += m->tensor_bytes();
    Progress progress("inspect", total, "B");
    o.progress = [&](uint64_t n) { progress.advance(n); };
    tv = inspect::task_vector_stats(*base, models, o);
    progress.finish();
  }

  if (a.json) {
    nlohmann::json j;
    j["models"] = nlohmann::json::array();
    for (const auto& s : summaries) j["models"].push_back(inspect::to_json(s));
    if (base) j["base"] = base->ref();
    j["compatible"] = !compat || compat->compatible();
    if (compat) j["compatibility"] = inspect::to_json(*compat);
    if (tv) j["task_vectors"] = inspect::to_json(*tv);
    fmt::print("{}\n", j.dump(2));
  } else {
    if (summaries.size() == 1) print_one(summaries[0]);
    else print_table(summaries);
    if (compat) print_compat(*compat);
    if (tv) fmt::print("\n{}", inspect::format_table(*tv));
  }
  std::fflush(stdout);
  // A completed report that found incompatible models: exit 1 without an error line.
  if (compat && !compat->compatible()) throw CLI::RuntimeError(1);
}

Command inspect_command(15, "inspect", [](CLI::App& app) {
  auto args = std::make_shared<InspectArgs>();
  CLI::App* c = app.add_subcommand(
      "inspect", "Summarize models, check their compatibility, measure task vectors vs a base");
  c->add_option("MODEL", args->models, "Model directories or org/name in the HF cache")
      ->required();
  c->add_option("--base", args->base, "Base model: report task-vector norms, cosines, sign conflicts");
  c->add_flag("--json", args->json, "Print JSON instead of tables");
  c->add_option("--threads", args->threads, "Worker threads (default: all cores)");
  c->footer("Exit status: 0 compatible (or one model), 1 incompatible models (report printed), "
            "2 usage, 3 bad input, 5 I/O error.");
  c->callback([args] { run(*args); });
});

}  // namespace
}  // namespace amalgam::cli
