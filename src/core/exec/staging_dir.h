// Atomic publication of a merge's output: everything is written into a staging
// directory `.NAME.tmp-<pid>` beside OUT_DIR and renamed into place at the end, so
// OUT_DIR never holds a partial model. The destructor removes an unpublished staging
// dir (exceptions, cancellation). After a SIGKILL the staging dir stays behind; the next
// merge into the same OUT_DIR removes staging dirs whose pid is no longer alive.
#pragma once
#include <string>
#include <string_view>

#include "io/file_env.h"

namespace amalgam {

class StagingDir {
 public:
  // Refuses an existing OUT_DIR unless `force` (Error(Usage)), removes stale staging dirs
  // of dead processes, creates the staging dir (Error(Io) naming it).
  StagingDir(std::string out_dir, bool force);
  ~StagingDir();
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;

  const std::string& path() const { return path_; }
  const std::string& out_dir() const { return out_dir_; }
  // Renames the staging dir to OUT_DIR (an existing OUT_DIR is replaced when `force`).
  void publish();

 private:
  std::string out_dir_, path_;
  bool force_, published_ = false;
};

// Removes `.NAME.tmp-<pid>` / `.NAME.old-<pid>` beside `out_dir` whose process is gone.
// Returns how many were removed.
int remove_stale_staging_dirs(const std::string& out_dir);

// Writes a whole small file through the FileEnv (Error(Io) naming the file).
void write_file(FileEnv* env, const std::string& path, std::string_view bytes);
// Copies `src` to `dst` through the FileEnv (Error(Io) naming whichever file failed).
void copy_file(FileEnv* env, const std::string& src, const std::string& dst);

}  // namespace amalgam
