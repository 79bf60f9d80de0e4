// Test helper for inspect tests: writes a small model directory with chosen tensors and
// values (through the real ShardedWriter) and a config.json.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/safetensors_writer.h"
#include "kernels/convert.h"

namespace amalgam::inspect::testing {

struct TestTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
  DType dtype = DType::F32;
};

inline void write_test_model(const std::filesystem::path& dir, const std::vector<TestTensor>& tensors,
                             const nlohmann::json& config, uint64_t max_shard_bytes = 1ULL << 40) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "config.json") << config.dump();
  std::vector<OutputTensor> out;
  for (const auto& t : tensors) out.push_back({t.name, t.dtype, t.shape});
  ShardedWriter w(dir.string(), out, max_shard_bytes);
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    std::vector<uint8_t> bytes(t.values.size() * dtype_size(t.dtype));
    from_f32(t.dtype, t.values.data(), bytes.data(), t.values.size());
    if (!bytes.empty()) w.write(i, 0, bytes.data(), bytes.size());
  }
  w.finish();
}

struct TestDir {
  std::filesystem::path path;
  explicit TestDir(const std::string& tag) {
    static int n = 0;
    path = std::filesystem::temp_directory_path() /
           ("amalgam-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TestDir() { std::filesystem::remove_all(path); }
};

}  // namespace amalgam::inspect::testing
