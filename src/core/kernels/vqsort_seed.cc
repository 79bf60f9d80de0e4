// Pivot seeds for Highway's vqsort without a system call. Debian's libhwy 1.0.3 seeds
// every hwy::Sorter call with getrandom(2) (Sorter::Fill24Bytes): about 1.5 us under this
// VM, a third of a della merge that sorts ~2 billion keys in rows of 896 (perf, session 6).
// The library calls Fill24Bytes through its PLT, so this definition (loaded before
// libhwy_contrib) takes its place. The seed only steers pivot sampling: every key we
// sort is distinct, so the sorted order does not depend on it, and vqsort falls back to
// heapsort when pivots go bad, so a predictable seed cannot make it quadratic.
// vqsort_seed_test.cc checks that this definition is the one the sorter calls. Only for
// Highway 1.0 (Debian 12): other versions seed differently, and keep their own.
#include <hwy/contrib/sort/vqsort.h>
#include <hwy/highway.h>

#include <cstdint>
#include <cstring>

#include "kernels/vqsort_seed.h"

#if HWY_MAJOR == 1 && HWY_MINOR == 0
#define AMALGAM_VQSORT_SEED 1
#else
#define AMALGAM_VQSORT_SEED 0
#endif

namespace amalgam {
namespace {
thread_local uint64_t seed_calls = 0;
}
uint64_t vqsort_seed_calls() { return seed_calls; }
bool vqsort_seed_replaced() { return AMALGAM_VQSORT_SEED != 0; }
}  // namespace amalgam

#if AMALGAM_VQSORT_SEED
namespace hwy {

void Sorter::Fill24Bytes(const void*, size_t, void* bytes) {
  // splitmix64 over a per-thread counter: cheap, different per call.
  thread_local uint64_t state = 0x9e3779b97f4a7c15ull;
  uint64_t words[3];
  for (uint64_t& w : words) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    w = z ^ (z >> 31);
  }
  std::memcpy(bytes, words, sizeof(words));
  ++amalgam::seed_calls;
}

}  // namespace hwy
#endif
