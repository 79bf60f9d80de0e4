// Entry point of the `amalgam` binary: builds the CLI11 app from the registered
// subcommands, runs the chosen one, and turns every amalgam::Error into one line on
// stderr and its documented exit status (see util/error.h).
#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <filesystem>
#include <string>
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
  command_registry().push_back({order, std::move(setup), ""});
}
Command::Command(int order, std::string name, std::function<void(CLI::App&)> setup) {
  command_registry().push_back({order, std::move(setup), std::move(name)});
}

int default_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

namespace {

// The first argument that is not an option: the subcommand's name, or "" if none.
std::string command_word(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (argv[i][0] != '-') return argv[i];
  return "";
}

// Loads the torch commands (eval, zoo, demo, ...) from amalgam_torch_cli.so beside the
// binary, unless the command is one of the binary's own. Their static Command objects
// register them on load. A build without torch has no plugin: the command then stays
// unknown and CLI11 says so.
void load_torch_commands(int argc, char** argv) {
  std::string word = command_word(argc, argv);
  if (word.empty() && argc == 2 && std::string(argv[1]) == "--version") return;
  for (const auto& entry : command_registry())
    if (!word.empty() && entry.name == word) return;
  // libgomp (torch's thread pool) reads OMP_WAIT_POLICY once, when it is loaded, and by
  // default its idle workers spin for a while after every parallel region. OpenBLAS runs
  // its own threads for every matmul, so on a small machine the spinning workers take the
  // cores OpenBLAS needs: the 100M-parameter eval benchmark ran at 160-180 tokens/s with
  // the default policy and 450-480 with PASSIVE (bench/eval_bench.py, 2 threads), and
  // `zoo build --preset micro` took 27 s instead of 2 s under load. Unless the user chose
  // a policy, set it before libtorch (and libgomp with it) is loaded.
  setenv("OMP_WAIT_POLICY", "PASSIVE", /*overwrite=*/0);
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return;
  auto plugin = exe.parent_path() / "amalgam_torch_cli.so";
  if (!std::filesystem::exists(plugin)) return;
  if (!dlopen(plugin.c_str(), RTLD_NOW | RTLD_GLOBAL))
    fmt::print(stderr, "amalgam: warning: cannot load {}: {}\n", plugin.string(), dlerror());
}

}  // namespace

}  // namespace amalgam::cli

int main(int argc, char** argv) {
  amalgam::cli::load_torch_commands(argc, argv);
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
