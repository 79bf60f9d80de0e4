// Reads one .safetensors file: validates the whole header on open (see validate rules in
// the Foundation issue: sizes, JSON shape, dtypes, shapes, offsets in bounds, no overlap,
// exact byte sizes, no duplicates) and gives access to tensor bytes without loading a
// tensor: the file is memory-mapped and consumers read ranges. Pages a consumer is done
// with can be released (release()) so RSS stays bounded on files larger than RAM.
// Every error is an Error(Input) naming the file (and tensor).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "io/dtype.h"

namespace amalgam {

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t data_begin = 0;  // byte offset relative to the start of the data section
  uint64_t data_end = 0;
  uint64_t numel() const;   // 1 for a 0-d tensor
  uint64_t nbytes() const { return data_end - data_begin; }
};

class SafetensorsFile {
 public:
  explicit SafetensorsFile(std::string path);  // opens, maps, validates; throws Error
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in file order
  const TensorInfo* find(const std::string& name) const;               // nullptr if absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  uint64_t file_size() const { return file_size_; }
  uint64_t header_size() const { return header_size_; }
  // The descriptor the file stays open on, for occasional preads from any thread (one
  // file offset is never used). Readers that stream a tensor open their own, so that
  // each keeps its own readahead state.
  int fd() const { return fd_; }

  // Pointer to the tensor's raw little-endian bytes (valid while this object lives).
  const uint8_t* data(const TensorInfo& t) const;
  // Copy `count` elements starting at element `first`, converted to f32.
  void read_f32(const TensorInfo& t, uint64_t first, uint64_t count, float* dst) const;
  // Hint that [first, first+count) elements will be read soon / are no longer needed.
  void prefetch(const TensorInfo& t, uint64_t first, uint64_t count) const;
  void release(const TensorInfo& t, uint64_t first, uint64_t count) const;

  // Validate a header held in memory (used by the fuzz test); throws Error(Input).
  static std::vector<TensorInfo> parse_header(const std::string& file_label, const uint8_t* bytes,
                                              uint64_t file_size,
                                              std::map<std::string, std::string>* metadata);

 private:
  std::string path_;
  int fd_ = -1;
  uint8_t* map_ = nullptr;
  uint64_t file_size_ = 0;
  uint64_t header_size_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> by_name_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace amalgam
