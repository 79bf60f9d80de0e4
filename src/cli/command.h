// Subcommand registration for the `amalgam` binary. Each cli/*.cc file registers one
// subcommand with a static Command object; main() adds them in `order`. Files named
// torch_*.cc need amalgam_torch and are left out of the core-only (sanitizer) build.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace amalgam::cli {

struct Command {
  // `setup` adds the subcommand to `app` and installs its callback.
  Command(int order, std::function<void(CLI::App& app)> setup);
};

struct CommandEntry {
  int order;
  std::function<void(CLI::App&)> setup;
};
std::vector<CommandEntry>& command_registry();

// Shared option helpers so that every subcommand spells them the same way.
int default_threads();  // hardware_concurrency, at least 1

}  // namespace amalgam::cli
