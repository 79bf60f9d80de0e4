// The file-system seam (LevelDB's Env idea): everything that writes model files goes
// through a FileEnv so tests can inject a full disk or a crash point. Reads use mmap
// directly (see SafetensorsFile).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace amalgam {

// A file open for writing at arbitrary offsets (pwrite); thread-safe for disjoint ranges.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual void write_at(uint64_t offset, const void* data, size_t n) = 0;  // throws Error(Io)
  // Allocates the file's final `size` bytes up front: a full disk fails here, before any
  // work, and writes then skip the file system's delayed block allocation. No-op where
  // the file system cannot preallocate.
  virtual void reserve(uint64_t size) {}
  // Starts writing dirty pages back without waiting, so that sync() at the end has
  // little left to wait for.
  virtual void start_writeback() {}
  virtual void sync() = 0;
  virtual void close() = 0;
};

class FileEnv {
 public:
  virtual ~FileEnv() = default;
  virtual std::unique_ptr<WritableFile> create(const std::string& path) = 0;
  // The real file system. Not owned by the caller. With `durable`, sync() is fsync and
  // write-back starts early; without it both are no-ops: the data reaches the page cache
  // and the kernel writes it back later (as mergekit's output does). An interrupted or
  // killed process still leaves nothing behind (the staging rename); only a power loss
  // right after a non-durable write can lose data.
  static FileEnv* posix(bool durable = true);
};

}  // namespace amalgam
