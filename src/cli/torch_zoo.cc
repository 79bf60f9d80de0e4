// `amalgam zoo build`: trains (or finds in the cache) the self-trained model zoo of a
// preset: base, instruction-tuned base, experts, generalists, and the task files. With
// --eval, scores the models by exact match on every family. See src/torch/zoo/zoo.h.
#include <memory>
#include <sstream>

#include <fmt/format.h>

#include "cli/command.h"
#include "torch/zoo/zoo.h"
#include "util/error.h"

namespace amalgam::cli {
namespace {

struct ZooArgs {
  std::string preset = "tiny", out, models;
  uint64_t seed = 0;
  int threads = 0;
  bool json = false, dry_run = false, eval = false, quiet = false;
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

void run_build(const ZooArgs& a) {
  zoo::Zoo z(zoo::zoo_preset(a.preset), a.seed,
             a.out.empty() ? std::nullopt : std::optional<std::string>(a.out),
             a.threads > 0 ? a.threads : default_threads(), a.quiet || a.json);
  std::vector<std::string> names;
  if (a.models.empty()) {
    for (const auto& s : z.models()) names.push_back(s.name);
  } else {
    names = split_list(a.models);
    for (const auto& n : names) z.spec(n);  // unknown names fail before any training
  }
  nlohmann::json j = {{"preset", z.preset().to_json()}, {"seed", a.seed}, {"root", z.root()},
                      {"hash", z.hash()}};
  if (a.dry_run) {
    nlohmann::json models = nlohmann::json::array();
    for (const auto& n : names) {
      auto m = z.spec(n).to_json();
      m["cached"] = z.is_built(n);
      m["dir"] = z.dir_of(n);
      models.push_back(m);
    }
    j["models"] = models;
    if (a.json) {
      fmt::print("{}\n", j.dump(2));
      return;
    }
    fmt::print("zoo {} (seed {}) at {}\n", a.preset, a.seed, z.root());
    for (const auto& m : models)
      fmt::print("  {:<28} {:<10} from {:<9} {:>5} steps lr {:<7} {}\n", m["name"].get<std::string>(),
                 m["role"].get<std::string>(),
                 m["parent"].get<std::string>().empty() ? "scratch" : m["parent"].get<std::string>(),
                 m["steps"].get<int>(), m["lr"].get<double>(),
                 m["cached"].get<bool>() ? "cached" : "to train");
    return;
  }
  for (const auto& n : names) z.ensure(n);
  j["tasks"] = z.ensure_tasks();
  nlohmann::json models = nlohmann::json::array();
  for (const auto& r : z.records())
    models.push_back({{"name", r.name}, {"dir", r.dir}, {"cached", r.cached},
                      {"seconds", r.seconds}, {"first_loss", r.first_loss},
                      {"final_loss", r.final_loss}});
  j["models"] = models;
  if (a.eval) {
    zoo::configure_zoo_threads(a.threads > 0 ? a.threads : default_threads());
    nlohmann::json scores;
    for (const auto& n : names) scores[n] = zoo::score_model_dir(z.dir_of(n), z.preset(), a.seed);
    j["scores"] = scores;
  }
  if (a.json) {
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("zoo {} (seed {}) at {}\n", a.preset, a.seed, z.root());
  for (const auto& r : z.records())
    fmt::print("  {:<28} {}\n", r.name,
               r.cached ? std::string("cached")
                        : fmt::format("trained in {:.1f} s, loss {:.3f} -> {:.3f}", r.seconds,
                                      r.first_loss, r.final_loss));
  fmt::print("  tasks: {}\n", j["tasks"].get<std::string>());
  if (a.eval) {
    std::vector<std::string> fams = z.preset().held_in;
    fams.insert(fams.end(), z.preset().held_out.begin(), z.preset().held_out.end());
    std::string head = fmt::format("{:<28}", "exact match");
    for (const auto& f : fams) head += fmt::format(" {:>9.9}", f);
    fmt::print("{}\n", head);
    for (const auto& n : names) {
      std::string line = fmt::format("{:<28}", n);
      for (const auto& f : fams) line += fmt::format(" {:>9.2f}", j["scores"][n][f].get<double>());
      fmt::print("{}\n", line);
    }
  }
}

Command zoo_command(70, [](CLI::App& app) {
  auto args = std::make_shared<ZooArgs>();
  CLI::App* zoo = app.add_subcommand("zoo", "The self-trained model zoo (tiny Llama models)");
  zoo->require_subcommand(1);
  CLI::App* b = zoo->add_subcommand("build", "Train (or load from the cache) a zoo preset");
  b->add_option("--preset", args->preset, "micro (tests), tiny (demo) or small")
      ->capture_default_str();
  b->add_option("--seed", args->seed, "Seed of data generation and training")->capture_default_str();
  b->add_option("--out", args->out, "Zoo directory (default: ~/.cache/amalgam/zoo/<preset>-<hash>)");
  b->add_option("--models", args->models, "Comma-separated model names (default: all)");
  b->add_option("--threads", args->threads, "Torch threads (default: all cores)");
  b->add_flag("--eval", args->eval, "Score the models by exact match on every family");
  b->add_flag("--json", args->json, "Print the result as JSON");
  b->add_flag("--dry-run", args->dry_run, "List the models and what is cached, train nothing");
  b->add_flag("--quiet", args->quiet, "No progress bars");
  b->callback([args] { run_build(*args); });
});

}  // namespace
}  // namespace amalgam::cli
