// DELLA's per-row rank against the least any exact rank must do, per key, on one thread:
//   rank   the product's rank_lookup_rows (packed 32-bit vqsort + vector sweep), the
//          probability of each element's rank written to its position;
//   sort   the packed vqsort alone (the items prepared once, outside the timing);
//   hist   a bare histogram of each row's keys by bf16 value (1024 or 4096 buckets, two
//          interleaved tables, cleared per row): every key touched once, no rank out.
// Keys are task-vector magnitudes like the 0.5B bench's: |bf16(b + 0.05 n) - bf16(b)|,
// b ~ N(0, 0.02), in rows of 896 (q_proj, o_proj, gate/up) and 4864 (down_proj).
// A della merge of the 0.5B bench ranks 1.98e9 keys, so 1 ns a key is ~1 s of CPU,
// ~0.5 s of wall time on 2 threads (docs/merge.md, "DELLA's floor").
// Usage: bench_della_rank [MILLION_KEYS=20]
#include <hwy/contrib/sort/vqsort.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "methods/gta_kernels.h"

namespace {

double now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

float bf16_round(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  u = (u + 0x7fff + ((u >> 16) & 1)) & 0xffff0000u;
  std::memcpy(&x, &u, 4);
  return x;
}

std::vector<uint32_t> task_vector_keys(size_t n) {
  std::mt19937_64 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<uint32_t> keys(n);
  for (auto& k : keys) {
    const float b = bf16_round(0.02f * nd(rng)), e = bf16_round(b + 0.05f * 0.02f * nd(rng));
    const float d = std::fabs(e - b);
    std::memcpy(&k, &d, 4);
  }
  return keys;
}

// The best of three timings of f, in ns per key.
template <class F>
double ns_per_key(size_t keys, F&& f) {
  double best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    const double t0 = now();
    f();
    best = std::min(best, now() - t0);
  }
  return best * 1e9 / static_cast<double>(keys);
}

}  // namespace

int main(int argc, char** argv) {
  const size_t total = static_cast<size_t>((argc > 1 ? std::atof(argv[1]) : 20.0) * 1e6);
  std::printf("| row keys | rank ns/key | sort ns/key | hist ns/key |\n|---|---|---|---|\n");
  for (size_t C : {size_t{896}, size_t{4864}}) {
    const size_t rows = std::max<size_t>(1, total / C), n = rows * C;
    const std::vector<uint32_t> keys = task_vector_keys(n);
    std::vector<float> table(C), out(n);
    for (size_t q = 0; q < C; ++q) table[q] = 0.4f + 0.2f * static_cast<float>(q) / static_cast<float>(C - 1);
    amalgam::mdetail::RankScratch scratch;
    const double rank = ns_per_key(n, [&] {
      amalgam::mdetail::rank_lookup_rows(keys.data(), rows, C, table.data(), out.data(), scratch);
    });
    // The packed items as rank_lookup_packed makes them (shift for keys below 1.0).
    const unsigned pb = static_cast<unsigned>(64 - __builtin_clzll(C - 1)), shift = pb - 2;
    std::vector<uint32_t> items(n), work(n);
    for (size_t i = 0; i < n; ++i) items[i] = (keys[i] >> shift) << pb | static_cast<uint32_t>(i % C);
    hwy::Sorter sorter;
    double sort = 1e30;
    for (int rep = 0; rep < 3; ++rep) {
      work = items;
      sort = std::min(sort, ns_per_key(n, [&] {
                        for (size_t r = 0; r < rows; ++r) sorter(work.data() + r * C, C, hwy::SortAscending());
                      }));
    }
    const unsigned nb = C <= 2048 ? 1024 : 4096;
    std::vector<uint16_t> counts(4 * nb);
    uint64_t sink = 0;
    const double hist = ns_per_key(n, [&] {
      for (size_t r = 0; r < rows; ++r) {
        const uint32_t* k = keys.data() + r * C;
        uint32_t top = 0;
        for (size_t i = 0; i < C; ++i) top = std::max(top, k[i] >> 16);
        const uint32_t base = top >= nb ? top - nb + 1 : 0;
        std::fill(counts.begin(), counts.end(), uint16_t{0});
        auto bucket = [&](uint32_t key) { return (key >> 16) < base ? 0u : (key >> 16) - base; };
        for (size_t i = 0; i + 3 < C; i += 4) {
          ++counts[bucket(k[i])];
          ++counts[nb + bucket(k[i + 1])];
          ++counts[2 * nb + bucket(k[i + 2])];
          ++counts[3 * nb + bucket(k[i + 3])];
        }
        sink += counts[nb - 1];
      }
    });
    std::printf("| %zu | %.2f | %.2f | %.2f |\n", C, rank, sort, hist);
    if (sink == 42) std::printf(" ");
  }
}
