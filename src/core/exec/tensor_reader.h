// Reads one chunk of one job input into an f32 buffer: resolves the stored tensor,
// follows rectified (top-left) layouts, applies the recipe's load-dtype rounding, and
// presents padded embedding rows (tokenizer.pad_to_multiple_of) as the mean real row. Bytes
// come by pread (offsets from the validated SafetensorsFile header), so nothing stays
// mapped and RSS is bounded by the chunks in flight.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "exec/chunking.h"
#include "io/safetensors_reader.h"
#include "plan/plan.h"

namespace amalgam {

class InputReader {
 public:
  // Resolves `ref` in `models`; throws Error(Input) naming the model and tensor when the
  // stored tensor is absent or cannot present itself in `job_shape`.
  // `for_reading` false only checks (validate_jobs): no descriptor is opened.
  InputReader(const ModelSet& models, const InputRef& ref, const std::vector<int64_t>& job_shape,
              std::optional<DType> load_dtype, bool for_reading = true);
  ~InputReader();
  InputReader(InputReader&& other) noexcept;
  InputReader(const InputReader&) = delete;
  InputReader& operator=(const InputReader&) = delete;

  // Job elements [begin, begin+count) as f32 into dst. `scratch` grows as needed.
  // Returns the stored bytes read.
  uint64_t read(uint64_t begin, uint64_t count, float* dst, std::vector<ReadSegment>& segments,
                std::vector<uint8_t>& scratch) const;
  DType stored_dtype() const { return info_->dtype; }

  // For inputs kept in memory across passes (exec/scheduler.cc): true when the stored
  // tensor is read as is (same shape, no load-dtype rounding), so that its raw bytes
  // converted with to_f32 are exactly what read() gives.
  bool reads_raw() const {
    return info_->shape == job_shape_ && !round_to_ && fd_ >= 0 && !pad_ && !remap_;
  }
  // Stored bytes of elements [begin, begin+count) into dst (reads_raw() inputs only).
  uint64_t read_raw(uint64_t begin, uint64_t count, uint8_t* dst) const;

 private:
  void release_with_fault_around(uint64_t first, uint64_t last) const;
  // Job elements [begin, begin+count) of the real (stored) rows.
  void read_real(uint64_t begin, uint64_t count, float* dst, std::vector<ReadSegment>& segments,
                 std::vector<uint8_t>& scratch) const;
  const std::vector<float>& mean_row() const;
  // Re-mapped embedding rows (RowRemap): job elements [begin, begin+count) of the real rows.
  void read_remapped(uint64_t begin, uint64_t count, float* dst, std::vector<uint8_t>& scratch) const;
  struct Stored {
    const SafetensorsFile* file;
    const TensorInfo* info;
    int fd;
  };
  void round_loaded(float* dst, uint64_t count, std::vector<uint8_t>& scratch) const;
  static void pread_stored(const Stored& t, uint64_t first, uint64_t count, uint8_t* dst);
  void pread_from(const Stored& t, uint64_t first, uint64_t count, float* dst, std::vector<uint8_t>& raw) const;
  void pread_f32(uint64_t first, uint64_t count, float* dst, std::vector<uint8_t>& raw) const;
  const SafetensorsFile* file_;
  const TensorInfo* info_;
  std::vector<int64_t> job_shape_;
  std::vector<int64_t> real_shape_;  // job_shape_ without the padding rows
  // tokenizer.pad_to_multiple_of: rows >= real_shape_[0] are the mean of the real rows,
  // computed (f64 sums in row order, rounded once) when first needed.
  struct Padding {
    std::once_flag once;
    std::vector<float> mean;
  };
  std::unique_ptr<Padding> pad_;
  std::optional<DType> round_to_;  // set when rounding changes values
  int fd_ = -1;                     // own descriptor for pread (see pread_f32)
  std::shared_ptr<const RowRemap> remap_;
  int remap_input_ = -1;
  std::vector<Stored> remap_sources_;  // every input of the job: its file's descriptor, ours for our own
};

}  // namespace amalgam
