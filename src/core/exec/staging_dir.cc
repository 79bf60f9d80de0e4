#include "exec/staging_dir.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "util/error.h"

namespace amalgam {
namespace fs = std::filesystem;
namespace {

// OUT_DIR without trailing slashes, so that its parent and name are well defined.
std::string normalize(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  if (dir.empty()) fail(ErrorKind::Usage, "output directory is empty");
  return dir;
}

fs::path parent_of(const std::string& out_dir) {
  fs::path p = fs::path(out_dir).parent_path();
  return p.empty() ? fs::path(".") : p;
}

std::string name_of(const std::string& out_dir) { return fs::path(out_dir).filename().string(); }

bool process_alive(long pid) {
  if (pid <= 0) return false;
  return kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

void sync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

int remove_stale_staging_dirs(const std::string& out_dir_in) {
  std::string out_dir = normalize(out_dir_in);
  fs::path parent = parent_of(out_dir);
  std::string name = name_of(out_dir);
  std::error_code ec;
  int removed = 0;
  for (const char* kind : {".tmp-", ".old-"}) {
    std::string prefix = "." + name + kind;
    for (fs::directory_iterator it(parent, ec), end; !ec && it != end; it.increment(ec)) {
      std::string entry = it->path().filename().string();
      if (entry.rfind(prefix, 0) != 0) continue;
      std::string digits = entry.substr(prefix.size());
      if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) continue;
      long pid = std::strtol(digits.c_str(), nullptr, 10);
      if (process_alive(pid) && pid != static_cast<long>(getpid())) continue;
      std::error_code rm;
      fs::remove_all(it->path(), rm);
      if (!rm) ++removed;
    }
  }
  return removed;
}

StagingDir::StagingDir(std::string out_dir, bool force)
    : out_dir_(normalize(std::move(out_dir))), force_(force) {
  std::error_code ec;
  fs::path parent = parent_of(out_dir_);
  if (!fs::is_directory(parent, ec))
    fail(ErrorKind::Io, "{}: parent directory {} does not exist", out_dir_, parent.string());
  if (fs::exists(fs::symlink_status(out_dir_, ec)) && !force_)
    fail(ErrorKind::Usage, "{}: output directory already exists (use --force to replace it)",
         out_dir_);
  remove_stale_staging_dirs(out_dir_);
  path_ = (parent / ("." + name_of(out_dir_) + ".tmp-" + std::to_string(getpid()))).string();
  fs::remove_all(path_, ec);  // our own pid: a leftover from an earlier call in this process
  if (!fs::create_directory(path_, ec) || ec)
    fail(ErrorKind::Io, "{}: cannot create staging directory: {}", path_,
         ec ? ec.message() : "exists");
}

StagingDir::~StagingDir() {
  if (published_) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void StagingDir::publish() {
  std::error_code ec;
  fs::path parent = parent_of(out_dir_);
  std::string old;
  if (fs::exists(fs::symlink_status(out_dir_, ec))) {
    if (!force_)
      fail(ErrorKind::Usage, "{}: output directory appeared during the merge; not replaced",
           out_dir_);
    // Move the old one aside first: rename(2) cannot replace a non-empty directory.
    old = (parent / ("." + name_of(out_dir_) + ".old-" + std::to_string(getpid()))).string();
    fs::remove_all(old, ec);
    fs::rename(out_dir_, old, ec);
    if (ec) fail(ErrorKind::Io, "{}: cannot move the existing directory aside: {}", out_dir_,
                 ec.message());
  }
  fs::rename(path_, out_dir_, ec);
  if (ec) {
    std::error_code back;
    if (!old.empty()) fs::rename(old, out_dir_, back);
    fail(ErrorKind::Io, "{}: cannot rename {} into place: {}", out_dir_, path_, ec.message());
  }
  published_ = true;
  sync_dir(parent);
  if (!old.empty()) fs::remove_all(old, ec);
}

void write_file(FileEnv* env, const std::string& path, std::string_view bytes) {
  auto file = env->create(path);
  if (!bytes.empty()) file->write_at(0, bytes.data(), bytes.size());
  file->sync();
  file->close();
}

void copy_file(FileEnv* env, const std::string& src, const std::string& dst) {
  std::ifstream in(src, std::ios::binary);
  if (!in) fail(ErrorKind::Io, "{}: cannot read: {}", src, std::strerror(errno));
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) fail(ErrorKind::Io, "{}: read failed", src);
  write_file(env, dst, buf.str());
}

}  // namespace amalgam
