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
                         const std::vector<int64_t>& job_shape, std::optional<DType> load_dtype,
                         bool for_reading)
    : job_shape_(job_shape), real_shape_(job_shape) {
  const ModelDir& model = models.at(ref.model);
  TensorRef t = model.get(ref.tensor);
  file_ = t.file;
  info_ = t.info;
  if (ref.real_rows >= 0 && job_shape.size() == 2 && ref.real_rows < job_shape[0]) {
    real_shape_[0] = ref.real_rows;
    pad_ = std::make_unique<Padding>();
  }
  round_to_ = effective_rounding(load_dtype, info_->dtype);
  if (ref.remap) {
    remap_ = ref.remap;
    remap_input_ = ref.remap_input;
    if (remap_input_ < 0 || static_cast<size_t>(remap_input_) >= remap_->own.size() || job_shape.empty() ||
        remap_->rows != real_shape_[0])
      fail(ErrorKind::Internal, "tensor {}: inconsistent row re-mapping", ref.tensor);
    for (const auto& s : remap_->stored) {
      TensorRef st = models.at(s.model).get(s.tensor);
      if (st.info->shape.size() != job_shape.size() ||
          !std::equal(job_shape.begin() + 1, job_shape.end(), st.info->shape.begin() + 1))
        fail(ErrorKind::Input, "{}: tensor {} has shape {}, cannot give rows of {}", models.at(s.model).ref(),
             s.tensor, shape_str(st.info->shape), shape_str(job_shape));
      if (!round_to_) round_to_ = effective_rounding(load_dtype, st.info->dtype);
      // The other inputs' rows (fallbacks) are occasional reads: through each file's own
      // descriptor. A descriptor per reader and input was N^2 per embedding job, and ran
      // into the open-file limit with a few dozen models.
      remap_sources_.push_back({st.file, st.info, st.file->fd()});
    }
  } else if (!rectified_ok(real_shape_, info_->shape)) {
    fail(ErrorKind::Input, "{}: tensor {} has shape {}, cannot be read as {}", model.ref(),
         ref.tensor, shape_str(info_->shape), shape_str(job_shape));
  }
  if (!for_reading) return;
  // Without a descriptor (should not happen: the file was just opened) read the mapping.
  fd_ = ::open(file_->path().c_str(), O_RDONLY | O_CLOEXEC);
  // This reader's own rows stream through its own descriptor (readahead).
  if (remap_ && fd_ >= 0) {
    Stored& self = remap_sources_[static_cast<size_t>(remap_input_)];
    if (self.file == file_) self.fd = fd_;
  }
}

InputReader::~InputReader() {
  if (fd_ >= 0) ::close(fd_);
}
InputReader::InputReader(InputReader&& o) noexcept
    : file_(o.file_), info_(o.info_), job_shape_(std::move(o.job_shape_)), real_shape_(std::move(o.real_shape_)),
      pad_(std::move(o.pad_)), round_to_(o.round_to_), fd_(std::exchange(o.fd_, -1)),
      remap_(std::move(o.remap_)), remap_input_(o.remap_input_),
      remap_sources_(std::exchange(o.remap_sources_, {})) {}

// Stored bytes of elements [first, first+count) of `t` into dst.
void InputReader::pread_stored(const Stored& t, uint64_t first, uint64_t count, uint8_t* dst) {
  const uint64_t isz = dtype_size(t.info->dtype);
  const uint64_t n = count * isz;
  const uint64_t off = 8 + t.file->header_size() + t.info->data_begin + first * isz;
  for (uint64_t done = 0; done < n;) {
    ssize_t got = ::pread(t.fd, dst + done, n - done, static_cast<off_t>(off + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0)
      fail(ErrorKind::Io, "{}: read of tensor {} failed: {}", t.file->path(), t.info->name,
           got < 0 ? std::strerror(errno) : "unexpected end of file");
    done += static_cast<uint64_t>(got);
  }
}

void InputReader::pread_from(const Stored& t, uint64_t first, uint64_t count, float* dst,
                             std::vector<uint8_t>& raw) const {
  const uint64_t n = count * dtype_size(t.info->dtype);
  if (raw.size() < n) raw.resize(n);
  pread_stored(t, first, count, raw.data());
  to_f32(t.info->dtype, raw.data(), dst, count);
}

// Row by row; runs of rows that are consecutive in one stored tensor are one read.
void InputReader::read_remapped(uint64_t begin, uint64_t count, float* dst,
                                std::vector<uint8_t>& scratch) const {
  uint64_t cols = 1;
  for (size_t d = 1; d < job_shape_.size(); ++d) cols *= static_cast<uint64_t>(job_shape_[d]);
  const std::vector<int32_t>& own = remap_->own[static_cast<size_t>(remap_input_)];
  const Stored& self = remap_sources_[static_cast<size_t>(remap_input_)];
  std::vector<float> row;
  std::vector<double> sum;
  uint64_t e = begin;
  const uint64_t end = begin + count;
  while (e < end) {
    const uint64_t r = e / cols, c = e % cols;
    const int32_t src = own[r];
    if (src >= 0) {
      // Extend over following rows whose stored rows follow on.
      uint64_t last = r;
      while ((last + 1) * cols < end && own[last + 1] == src + static_cast<int32_t>(last + 1 - r)) ++last;
      const uint64_t n = std::min(end, (last + 1) * cols) - e;
      pread_from(self, static_cast<uint64_t>(src) * cols + c, n, dst + (e - begin), scratch);
      e += n;
      continue;
    }
    const uint64_t n = std::min(end - e, cols - c);
    const RowRemap::Fallback& f = remap_->fallbacks[static_cast<size_t>(remap_->fallback_of[r])];
    float* out = dst + (e - begin);
    if (f.from.empty()) {
      std::fill(out, out + n, 0.0f);
    } else if (f.from.size() == 1) {
      pread_from(remap_sources_[f.from[0].first], static_cast<uint64_t>(f.from[0].second) * cols + c, n, out,
                 scratch);
    } else {
      // The mean of the holders' rows: f64 sums in input order, rounded once.
      sum.assign(n, 0.0);
      row.resize(n);
      for (const auto& [j, stored_row] : f.from) {
        pread_from(remap_sources_[j], static_cast<uint64_t>(stored_row) * cols + c, n, row.data(), scratch);
        for (uint64_t i = 0; i < n; ++i) sum[i] += row[i];
      }
      const double k = static_cast<double>(f.from.size());
      for (uint64_t i = 0; i < n; ++i) out[i] = static_cast<float>(sum[i] / k);
    }
    e += n;
  }
}

uint64_t InputReader::read_raw(uint64_t begin, uint64_t count, uint8_t* dst) const {
  pread_stored({file_, info_, fd_}, begin, count, dst);
  return count * dtype_size(info_->dtype);
}

// pread into a small buffer, then convert: a copy from the page cache costs a quarter of
// faulting the same bytes in through the mapping (bench_merge floor: mmap read 1.25 GB/s,
// RAM read 5.1 GB/s on the benchmark machine), and leaves nothing mapped behind.
void InputReader::pread_f32(uint64_t first, uint64_t count, float* dst,
                            std::vector<uint8_t>& raw) const {
  pread_from({file_, info_, fd_}, first, count, dst, raw);  // `first` is a stored element
}

uint64_t InputReader::read(uint64_t begin, uint64_t count, float* dst,
                           std::vector<ReadSegment>& segments, std::vector<uint8_t>& scratch) const {
  if (!pad_) {
    read_real(begin, count, dst, segments, scratch);
    return count * dtype_size(info_->dtype);
  }
  const uint64_t cols = static_cast<uint64_t>(real_shape_[1]);
  const uint64_t real_end = static_cast<uint64_t>(real_shape_[0]) * cols;
  const uint64_t n_real = begin < real_end ? std::min(count, real_end - begin) : 0;
  if (n_real > 0) read_real(begin, n_real, dst, segments, scratch);
  if (n_real < count) {
    const std::vector<float>& mean = mean_row();
    for (uint64_t e = begin + n_real; e < begin + count; ++e) dst[e - begin] = mean[e % cols];
  }
  return n_real * dtype_size(info_->dtype);
}

const std::vector<float>& InputReader::mean_row() const {
  std::call_once(pad_->once, [this] {
    const uint64_t rows = static_cast<uint64_t>(real_shape_[0]), cols = static_cast<uint64_t>(real_shape_[1]);
    std::vector<double> sum(cols, 0.0);
    const uint64_t step = std::max<uint64_t>(1, (uint64_t{1} << 20) / std::max<uint64_t>(cols, 1));
    std::vector<float> buf(step * cols);
    std::vector<ReadSegment> segments;
    std::vector<uint8_t> scratch;
    for (uint64_t r = 0; r < rows; r += step) {
      const uint64_t n = std::min(step, rows - r);
      read_real(r * cols, n * cols, buf.data(), segments, scratch);
      for (uint64_t i = 0; i < n; ++i)
        for (uint64_t c = 0; c < cols; ++c) sum[c] += buf[i * cols + c];
    }
    pad_->mean.resize(cols);
    for (uint64_t c = 0; c < cols; ++c)
      pad_->mean[c] = rows ? static_cast<float>(sum[c] / static_cast<double>(rows)) : 0.0f;
  });
  return pad_->mean;
}

void InputReader::read_real(uint64_t begin, uint64_t count, float* dst, std::vector<ReadSegment>& segments,
                            std::vector<uint8_t>& scratch) const {
  if (remap_) {
    read_remapped(begin, count, dst, scratch);
    round_loaded(dst, count, scratch);
    return;
  }
  read_segments(real_shape_, info_->shape, begin, count, segments);
  if (fd_ >= 0) {
    for (const auto& s : segments) pread_f32(s.stored_first, s.count, dst + s.dst, scratch);
    segments.clear();  // nothing mapped: nothing to release
  } else {
    for (const auto& s : segments) file_->read_f32(*info_, s.stored_first, s.count, dst + s.dst);
  }
  round_loaded(dst, count, scratch);
  if (!segments.empty()) {
    // Drop the mapped pages we just read: one span covers the (possibly strided) segments.
    uint64_t first = segments.front().stored_first;
    uint64_t last = segments.back().stored_first + segments.back().count;
    release_with_fault_around(first, last);
  }
}

// Round to the recipe dtype and back, as mergekit converts at load time (METHODS.md §2).
void InputReader::round_loaded(float* dst, uint64_t count, std::vector<uint8_t>& scratch) const {
  if (!round_to_) return;
  size_t need = count * dtype_size(*round_to_);
  if (scratch.size() < need) scratch.resize(need);
  from_f32(*round_to_, dst, scratch.data(), count);
  to_f32(*round_to_, scratch.data(), dst, count);
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
