#include "io/file_env.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/error.h"

namespace amalgam {
namespace {

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd, bool durable)
      : path_(std::move(path)), fd_(fd), durable_(durable) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  void write_at(uint64_t offset, const void* data, size_t n) override {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      // Linux caps one pwrite at ~2 GiB; loop for short writes and EINTR.
      ssize_t w = ::pwrite(fd_, p, n, static_cast<off_t>(offset));
      if (w < 0) {
        if (errno == EINTR) continue;
        fail(ErrorKind::Io, "{}: write of {} bytes at offset {} failed: {}", path_, n, offset,
             std::strerror(errno));
      }
      if (w == 0) fail(ErrorKind::Io, "{}: write at offset {} made no progress", path_, offset);
      p += w;
      n -= static_cast<size_t>(w);
      offset += static_cast<uint64_t>(w);
    }
  }

  void reserve(uint64_t size) override {
    // fallocate(2), not posix_fallocate: glibc emulates the latter by writing zeros
    // where the file system cannot preallocate, which would write the model twice.
    if (size == 0 || ::fallocate(fd_, 0, 0, static_cast<off_t>(size)) == 0) return;
    if (errno == EOPNOTSUPP || errno == ENOSYS || errno == EINTR) return;
    fail(ErrorKind::Io, "{}: cannot allocate {} bytes: {}", path_, size, std::strerror(errno));
  }

  void start_writeback() override {
    if (!durable_) return;
    // Asynchronous (SYNC_FILE_RANGE_WRITE only); errors surface at fsync.
    (void)::sync_file_range(fd_, 0, 0, SYNC_FILE_RANGE_WRITE);
  }

  void sync() override {
    if (!durable_) return;
    if (::fsync(fd_) != 0) fail(ErrorKind::Io, "{}: fsync failed: {}", path_, std::strerror(errno));
  }

  void close() override {
    if (fd_ < 0) return;
    int fd = fd_;
    fd_ = -1;
    // close() can report deferred write errors (NFS, quota): they must not be lost.
    if (::close(fd) != 0) fail(ErrorKind::Io, "{}: close failed: {}", path_, std::strerror(errno));
  }

 private:
  std::string path_;
  int fd_;
  bool durable_;
};

class PosixEnv final : public FileEnv {
 public:
  explicit PosixEnv(bool durable) : durable_(durable) {}
  std::unique_ptr<WritableFile> create(const std::string& path) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail(ErrorKind::Io, "{}: cannot create: {}", path, std::strerror(errno));
    return std::make_unique<PosixWritableFile>(path, fd, durable_);
  }

 private:
  bool durable_;
};

}  // namespace

FileEnv* FileEnv::posix(bool durable) {
  static PosixEnv durable_env(true), fast_env(false);
  return durable ? &durable_env : &fast_env;
}

}  // namespace amalgam
