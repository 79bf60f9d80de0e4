#include "io/safetensors_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "io/json_strict.h"
#include "kernels/convert.h"
#include "util/error.h"

namespace amalgam {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // as the safetensors reference reader

[[noreturn]] void bad(const std::string& label, const std::string& what) {
  throw Error(ErrorKind::Input, label + ": " + what);
}
[[noreturn]] void bad_tensor(const std::string& label, const std::string& name, const std::string& what) {
  throw Error(ErrorKind::Input, fmt::format("{}: tensor '{}': {}", label, name, what));
}

// A JSON integer that fits in uint64 and is >= 0 (floats such as 2.0 are refused: the
// format says integers, and accepting them would hide a writer bug).
bool as_u64(const nlohmann::json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(v.get<int64_t>());
    return true;
  }
  return false;
}

TensorInfo parse_entry(const std::string& label, const std::string& name, const nlohmann::json& e) {
  if (!e.is_object()) bad_tensor(label, name, "entry is not a JSON object");
  TensorInfo t;
  t.name = name;
  auto dt = e.find("dtype");
  if (dt == e.end() || !dt->is_string()) bad_tensor(label, name, "missing or non-string \"dtype\"");
  auto parsed = parse_dtype(dt->get_ref<const std::string&>());
  if (!parsed) bad_tensor(label, name, fmt::format("unknown dtype \"{}\"", dt->get_ref<const std::string&>()));
  t.dtype = *parsed;

  auto sh = e.find("shape");
  if (sh == e.end() || !sh->is_array()) bad_tensor(label, name, "missing or non-array \"shape\"");
  uint64_t numel = 1;
  for (const auto& d : *sh) {
    uint64_t dim;
    if (!as_u64(d, &dim) || dim > static_cast<uint64_t>(INT64_MAX))
      bad_tensor(label, name, "shape entries must be non-negative integers");
    if (__builtin_mul_overflow(numel, dim, &numel)) bad_tensor(label, name, "shape product overflows 64 bits");
    t.shape.push_back(static_cast<int64_t>(dim));
  }
  uint64_t nbytes;
  if (__builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_size(t.dtype)), &nbytes))
    bad_tensor(label, name, "byte size overflows 64 bits");

  auto off = e.find("data_offsets");
  if (off == e.end() || !off->is_array() || off->size() != 2)
    bad_tensor(label, name, "\"data_offsets\" must be an array of two integers");
  if (!as_u64((*off)[0], &t.data_begin) || !as_u64((*off)[1], &t.data_end))
    bad_tensor(label, name, "\"data_offsets\" must be non-negative integers");
  if (t.data_end < t.data_begin)
    bad_tensor(label, name, fmt::format("data_offsets [{}, {}] end before begin", t.data_begin, t.data_end));
  if (t.data_end - t.data_begin != nbytes)
    bad_tensor(label, name,
               fmt::format("data_offsets [{}, {}] span {} bytes but {} x {} needs {}", t.data_begin, t.data_end,
                           t.data_end - t.data_begin, numel, dtype_name(t.dtype), nbytes));
  return t;
}

}  // namespace

uint64_t TensorInfo::numel() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

std::vector<TensorInfo> SafetensorsFile::parse_header(const std::string& label, const uint8_t* bytes,
                                                      uint64_t file_size,
                                                      std::map<std::string, std::string>* metadata) {
  if (file_size < 8) bad(label, fmt::format("truncated: {} bytes, a safetensors file needs at least 8", file_size));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];  // little-endian regardless of host
  if (n > kMaxHeaderBytes) bad(label, fmt::format("header length {} exceeds the 100 MB limit", n));
  if (n > file_size - 8)
    bad(label, fmt::format("header length {} runs past the end of the file ({} bytes)", n, file_size));
  const uint64_t data_size = file_size - 8 - n;

  StrictJson j = parse_json_strict(std::string_view(reinterpret_cast<const char*>(bytes + 8), n));
  if (j.value.is_discarded()) bad(label, "header is not valid JSON");
  if (!j.value.is_object()) bad(label, "header is not a JSON object");
  if (!j.duplicate_key.empty()) bad(label, fmt::format("duplicate key '{}' in header", j.duplicate_key));

  std::vector<TensorInfo> out;
  out.reserve(j.value.size());
  for (const auto& [key, val] : j.value.items()) {
    if (key == "__metadata__") {
      if (!val.is_object()) bad(label, "__metadata__ is not a JSON object");
      for (const auto& [mk, mv] : val.items()) {
        if (!mv.is_string()) bad(label, fmt::format("__metadata__ value for '{}' is not a string", mk));
        if (metadata) (*metadata)[mk] = mv.get<std::string>();
      }
      continue;
    }
    TensorInfo t = parse_entry(label, key, val);
    if (t.data_end > data_size)
      bad_tensor(label, key,
                 fmt::format("data_offsets [{}, {}] past the end of the data section ({} bytes)", t.data_begin,
                             t.data_end, data_size));
    out.push_back(std::move(t));
  }

  // "File order" is data order; it also makes the overlap check one pass.
  std::sort(out.begin(), out.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.data_begin != b.data_begin ? a.data_begin < b.data_begin : a.name < b.name;
  });
  const TensorInfo* prev = nullptr;
  for (const TensorInfo& t : out) {
    if (t.data_begin == t.data_end) continue;  // empty tensors occupy no bytes
    if (prev && t.data_begin < prev->data_end)
      bad_tensor(label, t.name,
                 fmt::format("data_offsets [{}, {}] overlap tensor '{}' [{}, {}]", t.data_begin, t.data_end,
                             prev->name, prev->data_begin, prev->data_end));
    prev = &t;
  }
  return out;
}

SafetensorsFile::SafetensorsFile(std::string path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail(ErrorKind::Io, "{}: cannot open: {}", path_, std::strerror(errno));
  struct stat st;
  if (::fstat(fd_, &st) != 0) {
    int e = errno;
    ::close(fd_);
    fail(ErrorKind::Io, "{}: cannot stat: {}", path_, std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd_);
    fail(ErrorKind::Input, "{}: not a regular file", path_);
  }
  file_size_ = static_cast<uint64_t>(st.st_size);
  if (file_size_ < 8) {
    ::close(fd_);
    fail(ErrorKind::Input, "{}: truncated: {} bytes, a safetensors file needs at least 8", path_, file_size_);
  }
  void* m = ::mmap(nullptr, file_size_, PROT_READ, MAP_SHARED, fd_, 0);
  if (m == MAP_FAILED) {
    int e = errno;
    ::close(fd_);
    fail(ErrorKind::Io, "{}: cannot mmap {} bytes: {}", path_, file_size_, std::strerror(e));
  }
  map_ = static_cast<uint8_t*>(m);
  try {
    tensors_ = parse_header(path_, map_, file_size_, &metadata_);
  } catch (...) {
    ::munmap(map_, file_size_);
    ::close(fd_);
    throw;
  }
  for (int i = 7; i >= 0; --i) header_size_ = (header_size_ << 8) | map_[i];
  for (size_t i = 0; i < tensors_.size(); ++i) by_name_.emplace(tensors_[i].name, i);
  // Tensors are usually streamed front to back once.
  ::madvise(map_, file_size_, MADV_SEQUENTIAL);
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, file_size_);
  if (fd_ >= 0) ::close(fd_);
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

const uint8_t* SafetensorsFile::data(const TensorInfo& t) const { return map_ + 8 + header_size_ + t.data_begin; }

void SafetensorsFile::read_f32(const TensorInfo& t, uint64_t first, uint64_t count, float* dst) const {
  const uint64_t numel = t.numel();
  if (first > numel || count > numel - first)
    fail(ErrorKind::Internal, "{}: tensor '{}': read of elements [{}, {}) past its {} elements", path_, t.name, first,
         first + count, numel);
  if (count == 0) return;
  const size_t isz = dtype_size(t.dtype);
  const uint8_t* src = data(t) + first * isz;
  if (reinterpret_cast<uintptr_t>(src) % isz == 0) {
    to_f32(t.dtype, src, dst, count);
    return;
  }
  // Third-party files may leave the data section unaligned (header length not a multiple
  // of 8); typed loads from it would be undefined, so bounce through an aligned buffer.
  alignas(64) uint64_t bounce[4096];
  const uint64_t per = sizeof(bounce) / isz;
  for (uint64_t done = 0; done < count;) {
    const uint64_t k = std::min(per, count - done);
    std::memcpy(bounce, src + done * isz, k * isz);
    to_f32(t.dtype, bounce, dst + done, k);
    done += k;
  }
}

namespace {
void advise(uint8_t* map, uint64_t map_size, uint64_t begin, uint64_t end, int advice) {
  if (begin >= end) return;
  static const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  uint64_t b = begin / page * page;
  uint64_t e = std::min(map_size, (end + page - 1) / page * page);
  // Advice is only a hint: a failure changes nothing about correctness.
  (void)::madvise(map + b, e - b, advice);
}
}  // namespace

void SafetensorsFile::prefetch(const TensorInfo& t, uint64_t first, uint64_t count) const {
  const uint64_t isz = dtype_size(t.dtype), base = 8 + header_size_ + t.data_begin;
  const uint64_t numel = t.numel();
  first = std::min(first, numel);
  count = std::min(count, numel - first);
  advise(map_, file_size_, base + first * isz, base + (first + count) * isz, MADV_WILLNEED);
}

void SafetensorsFile::release(const TensorInfo& t, uint64_t first, uint64_t count) const {
  const uint64_t isz = dtype_size(t.dtype), base = 8 + header_size_ + t.data_begin;
  const uint64_t numel = t.numel();
  first = std::min(first, numel);
  count = std::min(count, numel - first);
  // Dropping a read-only shared file mapping only unmaps pages from this process (the page
  // cache keeps them), so releasing a neighbour's partial page is harmless: it refaults.
  advise(map_, file_size_, base + first * isz, base + (first + count) * isz, MADV_DONTNEED);
}

}  // namespace amalgam
