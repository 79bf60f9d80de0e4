// The hot loop of a bracketed top-k selection (kernels/radix_select.h): one scan of the
// keys that, for a key range [br.lo, br.hi],
//   - counts the keys above br.hi,
//   - counts the keys inside in one of kBracketBins chosen bins of 2^16 keys, per bin:
//     those equal to the bin's value (low 16 bits zero: the many equal magnitudes of
//     bf16-sourced task vectors) and the others, and
//   - collects the other keys inside as (inverted key << 32 | index), the packing whose
//     ascending order is key descending, then index ascending.
// Keys are abs_key() bit patterns (< 2^31); indices < 2^32. An AVX-512 kernel (compares,
// in-register compress) with a portable branch-free fallback; both give the same counts
// and the same set of candidates (the order of `out` differs; callers only select).
#pragma once
#include <cstddef>
#include <cstdint>

namespace amalgam {

inline constexpr uint32_t kBracketBins = 8;   // counted bins
inline constexpr uint32_t kBracketWindow = 32;  // ... chosen among this many from br.eq_bin
inline constexpr size_t kBracketScanSlack = 16;

struct BracketCounts {
  uint64_t above = 0;
  uint64_t equal[kBracketBins] = {};  // keys == the value of the bin in slot j
  uint64_t frac[kBracketBins] = {};   // the bin's other keys (low bits set)
};

// Where the bracket lies: its key range; the counted bins: bin eq_bin + o has slot[o]
// (< kBracketBins, or kNoSlot: not counted); and whether candidates are common (then the
// AVX-512 kernel compresses every step instead of branching on their presence, which
// mispredicts when about one step in two has some).
inline constexpr uint32_t kNoSlot = 0xff;
struct Bracket {
  uint32_t lo = 0, hi = 0, eq_bin = 0;
  uint32_t slot[kBracketWindow] = {kNoSlot, kNoSlot, kNoSlot, kNoSlot, kNoSlot, kNoSlot, kNoSlot, kNoSlot,
                                   kNoSlot, kNoSlot, kNoSlot, kNoSlot, kNoSlot, kNoSlot, kNoSlot, kNoSlot,
                                   kNoSlot, kNoSlot, kNoSlot, kNoSlot, kNoSlot, kNoSlot, kNoSlot, kNoSlot,
                                   kNoSlot, kNoSlot, kNoSlot, kNoSlot, kNoSlot, kNoSlot, kNoSlot, kNoSlot};
  bool dense = false;
};

// out must hold n + kBracketScanSlack entries (whole vectors are stored past the last);
// n < 2^31.
// Returns the number of candidates written; adds to *counts.
size_t bracket_scan_keys(const uint32_t* keys, size_t n, const Bracket& br,
                         uint64_t first_index, uint64_t* out, BracketCounts* counts);
// The same for keys abs_key(x[i] - b[i]), from f32 or from bf16 bits.
size_t bracket_scan_delta(const float* x, const float* b, size_t n, const Bracket& br,
                          uint64_t first_index, uint64_t* out, BracketCounts* counts);
size_t bracket_scan_delta(const uint16_t* x, const uint16_t* b, size_t n, const Bracket& br,
                          uint64_t first_index, uint64_t* out, BracketCounts* counts);

// Portable versions (used by the two above without AVX-512; tests compare them).
size_t bracket_scan_keys_portable(const uint32_t* keys, size_t n, const Bracket& br,
                                  uint64_t first_index, uint64_t* out, BracketCounts* counts);
size_t bracket_scan_delta_portable(const float* x, const float* b, size_t n, const Bracket& br,
                                   uint64_t first_index, uint64_t* out, BracketCounts* counts);
size_t bracket_scan_delta_portable(const uint16_t* x, const uint16_t* b, size_t n, const Bracket& br,
                                   uint64_t first_index, uint64_t* out, BracketCounts* counts);

}  // namespace amalgam
