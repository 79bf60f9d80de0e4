// amalgam's one error type. Thrown where a problem is detected, with the file, tensor
// or recipe line in the message; caught once in main() and printed as one line.
// Kernels never throw. Exit codes: see exit_code().
#pragma once
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace amalgam {

enum class ErrorKind {
  Input,     // a model file, config or task file is malformed or inconsistent (exit 3)
  Recipe,    // the recipe is invalid (exit 4)
  Io,        // the file system failed us: open, read, write, disk full (exit 5)
  Usage,     // command-line misuse (exit 2)
  Internal,  // a bug in amalgam (exit 70)
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, std::string message) : std::runtime_error(std::move(message)), kind_(kind) {}
  ErrorKind kind() const { return kind_; }
  int exit_code() const {
    switch (kind_) {
      case ErrorKind::Input: return 3;
      case ErrorKind::Recipe: return 4;
      case ErrorKind::Io: return 5;
      case ErrorKind::Usage: return 2;
      case ErrorKind::Internal: return 70;
    }
    return 1;
  }

 private:
  ErrorKind kind_;
};

template <typename... Args>
[[noreturn]] void fail(ErrorKind kind, fmt::format_string<Args...> f, Args&&... args) {
  throw Error(kind, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace amalgam
