// The hot loop of a bracketed top-k selection (kernels/radix_select.h): one scan of the
// keys that, for a key range [lo, hi],
//   - counts the keys above hi,
//   - counts the keys inside that are the value of one of kBracketBins bins of 2^16 keys
//     from bin `eq_bin` on (low 16 bits zero: the many equal magnitudes of bf16-sourced
//     task vectors), per bin, and
//   - collects the other keys inside as (inverted key << 32 | index), the packing whose
//     ascending order is key descending, then index ascending.
// Keys are abs_key() bit patterns (< 2^31); indices < 2^32. An AVX-512 kernel (compares,
// in-register compress) with a portable branch-free fallback; both give the same counts
// and the same set of candidates (the order of `out` differs; callers only select).
#pragma once
#include <cstddef>
#include <cstdint>

namespace amalgam {

inline constexpr uint32_t kBracketBins = 4;
inline constexpr size_t kBracketScanSlack = 16;

struct BracketCounts {
  uint64_t above = 0;
  uint64_t equal[kBracketBins] = {};  // keys == (eq_bin + j) << 16
};

// out must hold n + kBracketScanSlack entries (whole vectors are stored past the last);
// n < 2^31.
// Returns the number of candidates written; adds to *counts.
size_t bracket_scan_keys(const uint32_t* keys, size_t n, uint32_t lo, uint32_t hi, uint32_t eq_bin,
                         uint64_t first_index, uint64_t* out, BracketCounts* counts);
// The same for keys abs_key(x[i] - b[i]).
size_t bracket_scan_delta(const float* x, const float* b, size_t n, uint32_t lo, uint32_t hi, uint32_t eq_bin,
                          uint64_t first_index, uint64_t* out, BracketCounts* counts);

// Portable versions (used by the two above without AVX-512; tests compare them).
size_t bracket_scan_keys_portable(const uint32_t* keys, size_t n, uint32_t lo, uint32_t hi, uint32_t eq_bin,
                                  uint64_t first_index, uint64_t* out, BracketCounts* counts);
size_t bracket_scan_delta_portable(const float* x, const float* b, size_t n, uint32_t lo, uint32_t hi,
                                   uint32_t eq_bin, uint64_t first_index, uint64_t* out, BracketCounts* counts);

}  // namespace amalgam
