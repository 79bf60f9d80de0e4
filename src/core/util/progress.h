// The one progress reporter: a redrawn bar (done/total, rate, ETA) when stderr is a
// terminal, plain lines at most every few seconds otherwise, nothing when quiet.
// Thread-safe: any worker may call advance().
#pragma once
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace amalgam {

class Progress {
 public:
  // `unit` is "B" for bytes (shown as MB/GB) or a noun such as "steps".
  Progress(std::string label, uint64_t total, std::string unit = "", bool quiet = false);
  ~Progress();
  void advance(uint64_t n, const std::string& note = "");
  void set(uint64_t done, const std::string& note = "");
  void finish();
  // Drops the bar without its final line (an error message follows instead).
  void abandon();

 private:
  void draw(bool final_line);
  std::string label_, unit_, note_;
  uint64_t total_, done_ = 0;
  bool quiet_, tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
  std::mutex mu_;
};

// Where human messages (warnings, notes) go: stderr, one line each, unless quiet.
void report_warning(const std::string& line);
void set_quiet(bool quiet);

}  // namespace amalgam
