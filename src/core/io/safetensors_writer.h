// Writes a (possibly sharded) safetensors checkpoint in a streaming way: the caller
// declares every tensor first (name, dtype, shape), the writer lays them out into shards
// of at most `max_shard_bytes` (a tensor never spans shards), writes each shard's header,
// and then accepts tensor data in chunks at any byte offset, from any thread
// (pwrite into disjoint ranges); shard files are preallocated. finish() syncs (as the
// FileEnv's files do: fsync only when durable), closes and writes
// model.safetensors.index.json when there is more than one shard. Headers carry
// `__metadata__: {"format": "pt"}` as Hugging Face loaders expect.
// File names: model.safetensors, or model-00001-of-00003.safetensors, ...
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/dtype.h"
#include "io/file_env.h"

namespace amalgam {

struct OutputTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
};

class ShardedWriter {
 public:
  ShardedWriter(std::string dir, std::vector<OutputTensor> tensors, uint64_t max_shard_bytes,
                FileEnv* env = FileEnv::posix(),
                std::map<std::string, std::string> extra_metadata = {});
  ~ShardedWriter();

  size_t tensor_count() const;
  const OutputTensor& tensor(size_t index) const;
  size_t shard_count() const;
  uint64_t total_bytes() const;  // sum of tensor data bytes (index.json metadata.total_size)
  // Where tensor `index` lands: shard file name (relative to dir).
  const std::string& shard_file(size_t index) const;

  // Write raw bytes of tensor `index` at byte offset `offset` within that tensor.
  void write(size_t index, uint64_t offset, const void* data, size_t n);
  // Syncs and closes every shard, writes the index file if sharded. Returns file names.
  std::vector<std::string> finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Parses "5B", "500M", "1.5G", "100K", "1024" (bytes, base 1000 for K/M/B/G as mergekit
// does, "Ki/Mi/Gi" base 1024). Throws Error(Usage).
uint64_t parse_byte_size(const std::string& text);

}  // namespace amalgam
