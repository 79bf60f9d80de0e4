#include "exec/tensor_reader.h"

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
}

uint64_t InputReader::read(uint64_t begin, uint64_t count, float* dst,
                           std::vector<ReadSegment>& segments, std::vector<uint8_t>& scratch) const {
  read_segments(job_shape_, info_->shape, begin, count, segments);
  for (const auto& s : segments) file_->read_f32(*info_, s.stored_first, s.count, dst + s.dst);
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
    file_->release(*info_, first, last - first);
  }
  return count * dtype_size(info_->dtype);
}

}  // namespace amalgam
