// `amalgam demo`: builds or loads the tiny zoo, merges its experts with four methods
// through the merge engine, scores held-in and held-out tasks, prints the normalized
// table and writes demo-out/report.html. The work is in src/torch/zoo/demo.h.
#include <memory>

#include <fmt/format.h>

#include "cli/command.h"
#include "torch/zoo/demo.h"

namespace amalgam::cli {
namespace {

struct DemoArgs {
  zoo::DemoOptions options;
  std::string zoo_dir;
  int threads = 0;
  bool json = false, dry_run = false;
};

// --dry-run: what would be trained (or found cached), merged, scored, and where.
void print_plan(const nlohmann::json& plan) {
  fmt::print("amalgam demo (dry run: nothing is trained, merged or written)\n");
  fmt::print("zoo {} (seed {}) at {}\n", plan["preset"].get<std::string>(),
             plan["seed"].get<uint64_t>(), plan["zoo_root"].get<std::string>());
  for (const auto& m : plan["models"])
    fmt::print("  {:<28} {:<10} from {:<9} {:>5} steps lr {:<7} {}\n", m["name"].get<std::string>(),
               m["role"].get<std::string>(),
               m["parent"].get<std::string>().empty() ? "scratch" : m["parent"].get<std::string>(),
               m["steps"].get<int>(), m["lr"].get<double>(),
               m["cached"].get<bool>() ? "cached" : "to train");
  fmt::print("merges (through the merge engine):\n");
  for (const auto& m : plan["merges"])
    fmt::print("  {:<20} {} experts  recipe {}  -> {}\n", m["name"].get<std::string>(),
               m["experts"].size(), m["recipe"].get<std::string>(), m["model_dir"].get<std::string>());
  std::string in, out;
  for (const auto& f : plan["held_in"]) in += " " + f.get<std::string>();
  for (const auto& f : plan["held_out"]) out += " " + f.get<std::string>();
  fmt::print("scored by exact match on {} test items per family\n  held-in:{}\n  held-out:{}\n",
             plan["test_items"].get<int>(), in, out);
  fmt::print("report: {}\nresults: {}\n", plan["report"].get<std::string>(),
             plan["results"].get<std::string>());
}

void run_demo_command(DemoArgs& a) {
  a.options.threads = a.threads > 0 ? a.threads : default_threads();
  a.options.quiet = a.options.quiet || a.json;
  if (!a.zoo_dir.empty()) a.options.zoo_root = a.zoo_dir;
  if (a.dry_run) {
    const nlohmann::json plan = zoo::plan_demo(a.options);
    if (a.json) fmt::print("{}\n", plan.dump(2));
    else print_plan(plan);
    return;
  }
  const zoo::DemoResult r = zoo::run_demo(a.options);
  if (a.json) {
    fmt::print("{}\n", r.to_json().dump(2));
    return;
  }
  fmt::print("zoo {} at {}: {} models trained ({:.0f} s), {} cached\n", r.preset, r.zoo_root,
             r.models_trained, r.train_seconds, r.models_cached);
  fmt::print("\nexact match (instruct base / own expert) on held-in families:\n");
  for (const auto& f : r.held_in)
    fmt::print("  {:<12} {:.2f} / {:.2f}\n", f, r.model_scores.at("instruct").at(f),
               r.model_scores.at("expert-instruct-" + f).at(f));
  fmt::print("\nmerges, normalized as in \"What Matters for Model Merging at Scale?\"\n"
             "(held-in: merged / expert, held-out: merged / instruct base):\n{}",
             r.table_text());
  fmt::print("\nreport: {}  ({:.0f} s in all)\n", r.report_path, r.total_seconds);
}

Command demo_command(80, [](CLI::App& app) {
  auto args = std::make_shared<DemoArgs>();
  CLI::App* c = app.add_subcommand(
      "demo", "Train or load the tiny zoo, merge its experts four ways, score and report");
  c->add_option("--out", args->options.out_dir, "Output directory")->capture_default_str();
  c->add_option("--preset", args->options.preset, "Zoo preset (micro, tiny, small)")
      ->capture_default_str();
  c->add_option("--seed", args->options.seed, "Zoo seed")->capture_default_str();
  c->add_option("--zoo-dir", args->zoo_dir, "Zoo directory (default: the zoo cache)");
  c->add_option("--threads", args->threads, "Threads (default: all cores)");
  c->add_flag("--json", args->json, "Print the results as JSON");
  c->add_flag("--dry-run", args->dry_run,
              "Print what would be trained, merged and scored, and where; write nothing");
  c->add_flag("--quiet", args->options.quiet, "No progress bars");
  c->callback([args] { run_demo_command(*args); });
});

}  // namespace
}  // namespace amalgam::cli
