// The zoo's own seeded random generator (SplitMix64). Data generation draws only from
// it, single-threaded, so the same seed gives the same task items and training batches on
// every platform and standard library (std:: distributions are not portable).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace amalgam::zoo {

class ZooRng {
 public:
  explicit ZooRng(uint64_t seed) : state_(seed) {}
  // Seed derived from a parent seed and a label (model name, split), so streams that
  // must differ do, and adding a stream does not shift the others.
  ZooRng(uint64_t seed, std::string_view label) : state_(seed ^ hash(label)) { next(); }

  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n), unbiased (rejection of the incomplete top range).
  uint64_t below(uint64_t n) {
    if (n <= 1) return 0;
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = next(); while (x >= limit);
    return x % n;
  }
  int range(int lo, int hi) { return lo + static_cast<int>(below(static_cast<uint64_t>(hi - lo + 1))); }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  bool chance(double p) { return uniform() < p; }
  char letter() { return static_cast<char>('a' + below(26)); }
  char digit() { return static_cast<char>('0' + below(10)); }

  // FNV-1a: stable across runs and compilers (std::hash is not).
  static uint64_t hash(std::string_view text) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char c : text) h = (h ^ c) * 0x100000001b3ULL;
    return h;
  }

 private:
  uint64_t state_;
};

}  // namespace amalgam::zoo
