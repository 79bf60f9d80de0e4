// Entry point of the `amalgam` binary: builds the CLI11 app from the registered
// subcommands, runs the chosen one, and turns every amalgam::Error into one line on
// stderr and its documented exit status (see util/error.h).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <thread>

#include <fmt/format.h>

#include "cli/command.h"
#include "util/error.h"

namespace amalgam::cli {

std::vector<CommandEntry>& command_registry() {
  static std::vector<CommandEntry> registry;
  return registry;
}

Command::Command(int order, std::function<void(CLI::App&)> setup) {
  command_registry().push_back({order, std::move(setup)});
}

int default_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

namespace {

// libgomp (torch's thread pool) reads OMP_WAIT_POLICY once, when it is loaded, and by
// default its idle workers spin for a while after every parallel region. OpenBLAS runs
// its own threads for every matmul, so on a small machine the spinning workers take the
// cores OpenBLAS needs: the 100M-parameter eval benchmark ran at 160-180 tokens/s with
// the default policy and 450-480 with PASSIVE (bench/eval_bench.py, 2 threads). The
// policy cannot be changed after load, so the binary re-executes itself once with it
// set, unless the user chose a policy.
void prefer_passive_openmp(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  if (setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0) return;
  execv("/proc/self/exe", argv);  // returns only on failure: then run as we are
}

}  // namespace

}  // namespace amalgam::cli

int main(int argc, char** argv) {
  amalgam::cli::prefer_passive_openmp(argv);
  CLI::App app{"amalgam: merge, evaluate and search the merge of language-model checkpoints"};
  app.name("amalgam");
  app.require_subcommand(1);
  app.set_version_flag("--version", "amalgam 0.1.0");
  auto& registry = amalgam::cli::command_registry();
  std::sort(registry.begin(), registry.end(),
            [](const auto& a, const auto& b) { return a.order < b.order; });
  for (auto& entry : registry) entry.setup(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const amalgam::Error& e) {
    std::fflush(stdout);
    fmt::print(stderr, "amalgam: error: {}\n", e.what());
    return e.exit_code();
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "amalgam: error: out of memory\n");
    return 71;
  } catch (const std::exception& e) {
    fmt::print(stderr, "amalgam: internal error: {}\n", e.what());
    return 70;
  }
  return 0;
}
