// vqsort_seed.cc replaces Highway's per-sort getrandom(2) seeding; this counts its calls
// so a test can check that the replacement is the one hwy::Sorter uses.
#pragma once
#include <cstdint>

namespace amalgam {
// Seeds handed to hwy::Sorter on the calling thread so far.
uint64_t vqsort_seed_calls();
// Whether this build replaces the seeding (Highway 1.0 only).
bool vqsort_seed_replaced();
}  // namespace amalgam
