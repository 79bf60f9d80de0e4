// Test helpers for the CLI tests: run a shell command or the built `amalgam` binary
// (AMALGAM_BINARY) with stdout captured, and read a whole file. Header-only, tests only.
#pragma once
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace amalgam::testing {

struct CommandResult {
  int status;       // exit status, -1 if the process did not exit normally
  std::string out;  // everything it wrote to stdout
};

inline CommandResult run_command(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

// Runs `amalgam ARGS`, stdout captured, stderr redirected to `err_file`.
inline CommandResult run_amalgam(const std::string& args,
                                 const std::string& err_file = "/dev/null") {
  return run_command(std::string(AMALGAM_BINARY) + " " + args + " 2>" + err_file);
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace amalgam::testing
