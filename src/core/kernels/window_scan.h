// The first pass of a top-k selection whose threshold bin a sample has placed
// (kernels/radix_select.h, enable_window_sample): instead of a 32768-bin histogram of
// every key's high 16 bits (a scattered increment per key), one scan that
//   - counts the keys above the window's bins, and
//   - histograms only the keys inside them (a few percent: the window holds the sample's
//     ranks m/n +- 4 standard errors), in the first pass's packing: per bin,
//     count | (count of keys with low 16 bits set) << 32.
// Keys below the window are only skipped. Keys are abs_key() bit patterns (< 2^31). An
// AVX-512 kernel (compares, in-register compress of the keys inside) with a portable
// fallback; both give the same counts.
#pragma once
#include <cstddef>
#include <cstdint>

namespace amalgam {

// Bins [lo_bin, hi_bin] of the high 16 key bits (hi_bin < 32768).
struct KeyWindow {
  uint32_t lo_bin = 0, hi_bin = 0;
  uint32_t width() const { return hi_bin - lo_bin + 1; }
};

// hist[bin - lo_bin] += 1 + (low bits set) << 32 for the keys inside; *above += keys above.
void window_scan_keys(const uint32_t* keys, size_t n, KeyWindow w, uint64_t* hist, uint64_t* above);
// The same for keys abs_key(x[i] - b[i]), from f32 or from bf16 bits.
void window_scan_delta(const float* x, const float* b, size_t n, KeyWindow w, uint64_t* hist, uint64_t* above);
void window_scan_delta(const uint16_t* x, const uint16_t* b, size_t n, KeyWindow w, uint64_t* hist,
                       uint64_t* above);

// Two windows over the same keys in one scan (breadcrumbs' two cuts): the keys are
// computed once, and each window gets exactly the counts of its own window_scan_delta.
struct WindowTally {
  KeyWindow w;
  uint64_t* hist = nullptr;   // w.width() bins
  uint64_t* above = nullptr;
};
void window_scan_delta2(const float* x, const float* b, size_t n, const WindowTally& first, const WindowTally& second);
void window_scan_delta2(const uint16_t* x, const uint16_t* b, size_t n, const WindowTally& first,
                        const WindowTally& second);

// Portable versions (used by the above without AVX-512; tests compare them).
void window_scan_keys_portable(const uint32_t* keys, size_t n, KeyWindow w, uint64_t* hist, uint64_t* above);
void window_scan_delta_portable(const uint16_t* x, const uint16_t* b, size_t n, KeyWindow w, uint64_t* hist,
                                uint64_t* above);
void window_scan_delta2_portable(const uint16_t* x, const uint16_t* b, size_t n, const WindowTally& first,
                                 const WindowTally& second);

}  // namespace amalgam
