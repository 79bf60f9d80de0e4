// Subcommand registration for the `amalgam` binary. Each cli/*.cc file registers one
// subcommand with a static Command object; main() adds them in `order`. Files named
// torch_*.cc need amalgam_torch: they are built into the plugin amalgam_torch_cli.so
// beside the binary, which main() loads only for a command the binary does not name
// itself, so merge/inspect/synth never load libtorch (0.4 s and 160 MB of RSS).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace amalgam::cli {

struct Command {
  // `setup` adds the subcommand to `app` and installs its callback. Commands of the
  // binary itself give their `name`, so that main() knows not to load the plugin.
  Command(int order, std::function<void(CLI::App& app)> setup);
  Command(int order, std::string name, std::function<void(CLI::App& app)> setup);
};

struct CommandEntry {
  int order;
  std::function<void(CLI::App&)> setup;
  std::string name;  // empty for plugin commands
};
std::vector<CommandEntry>& command_registry();

// Shared option helpers so that every subcommand spells them the same way.
int default_threads();  // hardware_concurrency, at least 1

}  // namespace amalgam::cli
