#include "exec/tensor_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "kernels/convert.h"
#include "util/error.h"

namespace amalgam {
namespace {
std::string shape_str(const std::vector<int64_t>& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

// Rounding to the recipe dtype only changes values when it is a float type narrower than
// f32 and differs from the stored one (rounding a bf16 to bf16 is the identity).
std::optional<DType> effective_rounding(std::optional<DType> load, DType stored) {
  if (!load || *load == stored) return std::nullopt;
  switch (*load) {
    case DType::F16:
    case DType::BF16:
    case DType::F8_E4M3:
    case DType::F8_E5M2:
      return load;
    default:
      return std::nullopt;  // f32/f64: reading as f32 already is that; ints: not a float merge
  }
}
}  // namespace

InputReader::InputReader(const ModelSet& models, const InputRef& ref,
                         const std::vector<int64_t>& job_shape, std::optional<DType> load_dtype)
    : job_shape_(job_shape) {
  const ModelDir& model = models.at(ref.model);
  TensorRef t = model.get(ref.tensor);
  file_ = t.file;
  info_ = t.info;
  if (!rectified_ok(job_shape, info_->shape))
    fail(ErrorKind::Input, "{}: tensor {} has shape {}, cannot be read as {}", model.ref(),
         ref.tensor, shape_str(info_->shape), shape_str(job_shape));
  round_to_ = effective_rounding(load_dtype, info_->dtype);
  // Without a descriptor (should not happen: the file was just opened) read the mapping.
  fd_ = ::open(file_->path().c_str(), O_RDONLY | O_CLOEXEC);
}

InputReader::~InputReader() {
  if (fd_ >= 0) ::close(fd_);
}
InputReader::InputReader(InputReader&& o) noexcept
    : file_(o.file_), info_(o.info_), job_shape_(std::move(o.job_shape_)),
      round_to_(o.round_to_), fd_(std::exchange(o.fd_, -1)) {}

uint64_t InputReader::read_raw(uint64_t begin, uint64_t count, uint8_t* dst) const {
  const uint64_t isz = dtype_size(info_->dtype);
  const uint64_t n = count * isz;
  const uint64_t off = 8 + file_->header_size() + info_->data_begin + begin * isz;
  for (uint64_t done = 0; done < n;) {
    ssize_t got = ::pread(fd_, dst + done, n - done, static_cast<off_t>(off + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0)
      fail(ErrorKind::Io, "{}: read of tensor {} failed: {}", file_->path(), info_->name,
           got < 0 ? std::strerror(errno) : "unexpected end of file");
    done += static_cast<uint64_t>(got);
  }
  return n;
}

// pread into a small buffer, then convert: a copy from the page cache costs a quarter of
// faulting the same bytes in through the mapping (bench_merge floor: mmap read 1.25 GB/s,
// RAM read 5.1 GB/s on the benchmark machine), and leaves nothing mapped behind.
void InputReader::pread_f32(uint64_t first, uint64_t count, float* dst,
                            std::vector<uint8_t>& raw) const {
  const uint64_t n = count * dtype_size(info_->dtype);
  if (raw.size() < n) raw.resize(n);
  read_raw(first, count, raw.data());  // `first` is a stored element: the same offsets
  to_f32(info_->dtype, raw.data(), dst, count);
}

uint64_t InputReader::read(uint64_t begin, uint64_t count, float* dst,
                           std::vector<ReadSegment>& segments, std::vector<uint8_t>& scratch) const {
  read_segments(job_shape_, info_->shape, begin, count, segments);
  if (fd_ >= 0) {
    for (const auto& s : segments) pread_f32(s.stored_first, s.count, dst + s.dst, scratch);
    segments.clear();  // nothing mapped: nothing to release
  } else {
    for (const auto& s : segments) file_->read_f32(*info_, s.stored_first, s.count, dst + s.dst);
  }
  if (round_to_) {
    // Round to the recipe dtype and back, as mergekit converts at load time (METHODS.md §2).
    size_t need = count * dtype_size(*round_to_);
    if (scratch.size() < need) scratch.resize(need);
    from_f32(*round_to_, dst, scratch.data(), count);
    to_f32(*round_to_, scratch.data(), dst, count);
  }
  if (!segments.empty()) {
    // Drop the mapped pages we just read: one span covers the (possibly strided) segments.
    uint64_t first = segments.front().stored_first;
    uint64_t last = segments.back().stored_first + segments.back().count;
    release_with_fault_around(first, last);
  }
  return count * dtype_size(info_->dtype);
}

// The kernel's fault-around maps up to a 64 KiB aligned window around each faulting
// address, also pages of a neighbouring chunk that another worker may have released
// already, or of the next tensor in the file; those would stay mapped and RSS would grow
// with the model (measured: 1.2 GiB instead of 0.3 on Qwen2-0.5B x5 at 64K chunks).
// Every page our reads mapped lies within the read span +- that window, so dropping the
// padded span (within the file) leaves nothing behind; a neighbour that is still reading
// merely refaults from the page cache.
void InputReader::release_with_fault_around(uint64_t first, uint64_t last) const {
  constexpr uint64_t kWindow = 64 << 10;
  static const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t isz = dtype_size(info_->dtype);
  const uint64_t offset = 8 + file_->header_size() + info_->data_begin;  // of the tensor data
  const uint8_t* map = file_->data(*info_) - offset;
  uint64_t b = offset + first * isz, e = offset + last * isz;
  b = (b > kWindow ? b - kWindow : 0) / page * page;
  e = std::min(file_->file_size(), (e + kWindow + page - 1) / page * page);
  if (b < e) ::madvise(const_cast<uint8_t*>(map) + b, e - b, MADV_DONTNEED);
}

}  // namespace amalgam
