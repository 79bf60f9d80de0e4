#include "util/progress.h"

#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

namespace amalgam {
namespace {
bool g_quiet = false;

std::string human(double v, const std::string& unit) {
  if (unit != "B") return fmt::format("{:.0f}", v);
  const char* suffix[] = {"B", "KB", "MB", "GB", "TB"};
  int i = 0;
  while (v >= 1000 && i < 4) v /= 1000, ++i;
  return i == 0 ? fmt::format("{:.0f}{}", v, suffix[i]) : fmt::format("{:.1f}{}", v, suffix[i]);
}

std::string clock(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "--:--";
  int s = static_cast<int>(seconds + 0.5);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
                   : fmt::format("{:02}:{:02}", s / 60, s % 60);
}
}  // namespace

void set_quiet(bool quiet) { g_quiet = quiet; }
void report_warning(const std::string& line) {
  if (!g_quiet) fmt::print(stderr, "amalgam: warning: {}\n", line);
}

Progress::Progress(std::string label, uint64_t total, std::string unit, bool quiet)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total),
      quiet_(quiet || g_quiet), tty_(isatty(STDERR_FILENO) == 1) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
}
Progress::~Progress() { finish(); }

void Progress::abandon() {
  std::lock_guard lock(mu_);
  finished_ = true;
}

void Progress::advance(uint64_t n, const std::string& note) {
  std::lock_guard lock(mu_);
  done_ += n;
  if (!note.empty()) note_ = note;
  draw(false);
}
void Progress::set(uint64_t done, const std::string& note) {
  std::lock_guard lock(mu_);
  done_ = done;
  if (!note.empty()) note_ = note;
  draw(false);
}
void Progress::finish() {
  std::lock_guard lock(mu_);
  if (finished_) return;
  finished_ = true;
  draw(true);
}

void Progress::draw(bool final_line) {
  if (quiet_) return;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_draw_).count();
  if (!final_line && since < (tty_ ? 0.1 : 5.0)) return;
  last_draw_ = now;
  double elapsed = std::chrono::duration<double>(now - start_).count();
  double rate = elapsed > 0 ? done_ / elapsed : 0;
  double eta = rate > 0 && total_ > done_ ? (total_ - done_) / rate : 0;
  double frac = total_ ? std::min(1.0, double(done_) / total_) : 1.0;
  std::string counts = fmt::format("{}/{}{}", human(done_, unit_), human(total_, unit_),
                                   unit_ == "B" || unit_.empty() ? "" : " " + unit_);
  std::string speed = unit_ == "B" ? human(rate, unit_) + "/s" : fmt::format("{:.1f}/s", rate);
  if (tty_) {
    int width = 28, fill = static_cast<int>(frac * width);
    fmt::print(stderr, "\r\033[K{} [{}{}] {:3.0f}% {} {} {} {}{}", label_, std::string(fill, '#'),
               std::string(width - fill, '.'), frac * 100, counts, speed,
               final_line ? clock(elapsed) : "ETA " + clock(eta), note_, final_line ? "\n" : "");
  } else {
    fmt::print(stderr, "{}: {:.0f}% {} {} {} {}\n", label_, frac * 100, counts, speed,
               final_line ? "done in " + clock(elapsed) : "ETA " + clock(eta), note_);
  }
  std::fflush(stderr);
}

}  // namespace amalgam
