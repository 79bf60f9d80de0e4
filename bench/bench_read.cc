// Read throughput of the safetensors reader: a ~2 GB bf16 file in /tmp, page cache warm,
// streamed as bf16 -> f32 in 1M-element chunks (read_f32 + release, the executor's
// pattern) with 1 and 2 threads, reported in GB/s of file bytes next to a memory
// bandwidth floor (memcpy of a large buffer) and a conversion-only run from an
// in-memory buffer, measured in the same process. Peak RSS from getrusage.
// Usage: bench_read [GB=2] [path=/tmp/amalgam_bench_read.safetensors]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <thread>
#include <vector>

#include "io/safetensors_reader.h"
#include "io/safetensors_writer.h"
#include "kernels/convert.h"

using namespace amalgam;
using Clock = std::chrono::steady_clock;

namespace {

constexpr uint64_t kChunk = 1 << 20;  // elements

double seconds_of(const std::function<void()>& f) {
  const auto t0 = Clock::now();
  f();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Best of `reps`: the least disturbed run on a shared machine.
double best_of(int reps, const std::function<void()>& f) {
  double best = 1e30;
  for (int i = 0; i < reps; ++i) best = std::min(best, seconds_of(f));
  return best;
}

void parallel(int threads, const std::function<void(int)>& body) {
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(body, t);
  for (auto& th : pool) th.join();
}

long peak_rss_mb() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024;
}

}  // namespace

int main(int argc, char** argv) {
  const double gb = argc > 1 ? std::atof(argv[1]) : 2.0;
  const std::string path = argc > 2 ? argv[2] : "/tmp/amalgam_bench_read.safetensors";
  const std::string dir = path + ".d";
  const uint64_t per_tensor = 64ull << 20;  // 64 Mi elements = 128 MiB of bf16
  const uint64_t n_tensors = std::max<uint64_t>(1, static_cast<uint64_t>(gb * 1e9 / (2.0 * per_tensor) + 0.5));

  // 1. Write the file through the real writer (values: a slow ramp, bf16-rounded).
  std::vector<OutputTensor> ts;
  for (uint64_t i = 0; i < n_tensors; ++i)
    ts.push_back({"model.layers." + std::to_string(i) + ".weight", DType::BF16, {8192, static_cast<int64_t>(per_tensor / 8192)}});
  const double t_write = seconds_of([&] {
    ShardedWriter w(dir, ts, 0);
    std::vector<float> f(kChunk);
    std::vector<uint16_t> h(kChunk);
    for (uint64_t i = 0; i < n_tensors; ++i)
      for (uint64_t e = 0; e < per_tensor; e += kChunk) {
        for (uint64_t k = 0; k < kChunk; ++k) f[k] = static_cast<float>((e + k) % 1000) * 1e-3f - 0.5f;
        from_f32(DType::BF16, f.data(), h.data(), kChunk);
        w.write(i, e * 2, h.data(), kChunk * 2);
      }
    w.finish();
  });
  std::filesystem::rename(dir + "/model.safetensors", path);
  std::filesystem::remove_all(dir);

  SafetensorsFile file(path);
  const uint64_t file_bytes = file.file_size();
  std::printf("file: %s, %.2f GB, %zu tensors; written in %.1f s\n", path.c_str(), file_bytes / 1e9,
              file.tensors().size(), t_write);

  // 2. Warm the page cache (and check the data while at it).
  {
    std::vector<float> buf(kChunk);
    double sum = 0;
    for (const TensorInfo& t : file.tensors())
      for (uint64_t e = 0; e < t.numel(); e += kChunk) {
        file.read_f32(t, e, kChunk, buf.data());
        sum += buf[kChunk - 1];
        file.release(t, e, kChunk);
      }
    std::printf("warm-up pass done (checksum %.3f)\n", sum);
  }

  // Work list: (tensor, first element) chunks; thread t takes every T-th.
  std::vector<std::pair<const TensorInfo*, uint64_t>> chunks;
  for (const TensorInfo& t : file.tensors())
    for (uint64_t e = 0; e < t.numel(); e += kChunk) chunks.emplace_back(&t, e);

  struct Row {
    std::string what;
    int threads;
    double bytes, secs;
  };
  std::vector<Row> rows;

  // 3. The reader: mmap'd file, read_f32 + release per chunk.
  for (int threads : {1, 2}) {
    const double s = best_of(3, [&] {
      parallel(threads, [&](int t) {
        std::vector<float> out(kChunk);
        for (size_t c = static_cast<size_t>(t); c < chunks.size(); c += static_cast<size_t>(threads)) {
          const auto [info, first] = chunks[c];
          const uint64_t n = std::min(kChunk, info->numel() - first);
          file.read_f32(*info, first, n, out.data());
          file.release(*info, first, n);
        }
      });
    });
    rows.push_back({"read_f32 bf16 file, warm cache (file bytes)", threads, static_cast<double>(file_bytes), s});
  }

  const long reader_rss = peak_rss_mb();  // before the big buffers below

  // 4. Memory bandwidth floor: memcpy between two 1 GiB buffers (touched first).
  {
    const size_t n = 1ull << 30;
    std::vector<char> a(n, 1), b(n, 2);
    for (int threads : {1, 2}) {
      const double s = best_of(3, [&] {
        parallel(threads, [&](int t) {
          const size_t part = n / threads;
          std::memcpy(b.data() + t * part, a.data() + t * part, part);
        });
      });
      rows.push_back({"memcpy 1 GiB (bytes copied)", threads, static_cast<double>(n), s});
    }
  }
  // 5. Conversion alone from an in-memory bf16 buffer of 256 Mi elements.
  {
    const uint64_t n = 256ull << 20;
    std::vector<uint16_t> src(n, 0x3f80);
    for (int threads : {1, 2}) {
      const double s = best_of(3, [&] {
        parallel(threads, [&](int t) {
          std::vector<float> out(kChunk);
          for (uint64_t e = static_cast<uint64_t>(t) * kChunk; e < n; e += static_cast<uint64_t>(threads) * kChunk)
            to_f32(DType::BF16, src.data() + e, out.data(), kChunk);
        });
      });
      rows.push_back({"bf16->f32 from RAM (bf16 bytes)", threads, static_cast<double>(n * 2), s});
    }
  }
  std::printf("\n| what | threads | GB/s |\n| --- | ---: | ---: |\n");
  for (const Row& r : rows) std::printf("| %s | %d | %.2f |\n", r.what.c_str(), r.threads, r.bytes / r.secs / 1e9);
  std::printf("\npeak RSS while writing + reading the %.0f MB file: %ld MB (whole run, with the 2 GiB memcpy "
              "buffers: %ld MB)\n", file_bytes / 1e6, reader_rss, peak_rss_mb());
  std::filesystem::remove(path);
  return 0;
}
