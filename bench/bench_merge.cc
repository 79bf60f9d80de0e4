// The memory-bandwidth floor of a merge, for bench_merge.sh: how fast THREADS threads
// can merely read the input files once through mmap from a warm page cache (what any
// merge must at least do), and how fast they read an in-memory buffer (no page faults).
// Usage: bench_merge THREADS FILE...   Prints two lines: "mmap_read_gbps X", "ram_read_gbps Y".
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

struct Piece {
  const uint8_t* p;
  size_t n;
};

uint64_t sum_words(const uint8_t* p, size_t n) {
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    uint64_t w[4];
    std::memcpy(w, p + i, 32);
    s0 += w[0], s1 += w[1], s2 += w[2], s3 += w[3];
  }
  for (; i < n; ++i) s0 += p[i];
  return s0 + s1 + s2 + s3;
}

double run(int threads, const std::vector<Piece>& pieces, uint64_t bytes, bool release) {
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> sink{0};
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      uint64_t s = 0;
      for (size_t i; (i = next.fetch_add(1)) < pieces.size();) {
        s += sum_words(pieces[i].p, pieces[i].n);
        // Like the executor: drop the pages again so RSS stays bounded.
        if (release) madvise(const_cast<uint8_t*>(pieces[i].p), pieces[i].n, MADV_DONTNEED);
      }
      sink += s;
    });
  for (auto& t : ts) t.join();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (sink.load() == 42) std::puts("");  // keep the sums alive
  return bytes / s / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_merge THREADS FILE...\n");
    return 2;
  }
  int threads = std::atoi(argv[1]);
  const size_t kPiece = 1 << 20;
  std::vector<Piece> pieces;
  uint64_t bytes = 0;
  for (int i = 2; i < argc; ++i) {
    int fd = open(argv[i], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
      std::perror(argv[i]);
      return 1;
    }
    size_t n = st.st_size;
    auto* p = static_cast<const uint8_t*>(mmap(nullptr, n, PROT_READ, MAP_SHARED, fd, 0));
    close(fd);
    if (p == MAP_FAILED) return 1;
    for (size_t off = 0; off < n; off += kPiece) pieces.push_back({p + off, std::min(kPiece, n - off)});
    bytes += n;
  }
  std::printf("mmap_read_gbps %.2f\n", run(threads, pieces, bytes, true));
  // The same volume from one anonymous 256 MiB buffer read repeatedly: DRAM bandwidth.
  const size_t kBuf = 256u << 20;
  std::vector<uint8_t> buf(kBuf, 1);
  std::vector<Piece> ram;
  for (uint64_t off = 0; off < bytes; off += kPiece) ram.push_back({buf.data() + off % kBuf, kPiece});
  std::printf("ram_read_gbps %.2f\n", run(threads, ram, ram.size() * kPiece, false));
  return 0;
}
