// Exact streaming selection of the m largest keys of a tensor (TIES top-k, breadcrumbs
// ranks, sce top-k of variance, arcee_fusion quantiles). Keys are the f32 bit patterns
// of non-negative values (|x| with the sign bit cleared), which order like the values.
// Order: key descending, then flat index ascending (METHODS.md §8.4: among equal
// magnitudes the lower index ranks first). Passes over the data, at most three:
//   1. histogram of the high 16 key bits (32768 bins) -> the bin holding the m-th key,
//      plus an OR of the low 16 bits (bf16-sourced data has none: the bin is the key);
//   2. if needed, histogram of the low 16 bits inside that bin -> the exact threshold T;
//   3. if the threshold must be cut through equal keys, per-block counts of keys == T,
//      prefix-summed so the element-wise pass knows each equal key's rank.
// Pass 3 is skipped when every key == T is selected, when T's value is 0 and the caller
// said zeros are neutral, or for value-only queries (quantiles).
#pragma once
#include <cstdint>
#include <mutex>
#include <vector>

namespace amalgam {

inline uint32_t abs_key(float x) {
  uint32_t u;
  __builtin_memcpy(&u, &x, 4);
  return u & 0x7fffffffu;
}

// Pure kernels (also used directly by tests).
void key_histogram_hi(const uint32_t* keys, size_t n, uint32_t* hist32768, uint32_t* low_or);
void key_histogram_lo(const uint32_t* keys, size_t n, uint32_t hi, uint32_t* hist65536);
uint64_t count_key_equal(const uint32_t* keys, size_t n, uint32_t key);

// The resolved selection: element (key, index) is selected iff key > threshold, or
// key == threshold and (!cut_ties or its rank among equal keys in index order < need).
struct TopCut {
  uint32_t threshold = 0xffffffffu;  // m = 0: nothing is selected
  uint64_t need = 0;
  bool cut_ties = false;
};

class TopSelector {
 public:
  enum Stage { kHi, kLo, kEq, kDone };
  // Select the m largest of n keys; `blocks` reduction blocks (for the tie ranks).
  // zero_neutral: keys == 0 need no tie ranks (their values do not change anything).
  // values_only: only the threshold value is wanted (no tie ranks ever).
  TopSelector(uint64_t n, uint64_t m, uint64_t blocks, bool zero_neutral, bool values_only);
  // Changes m while still in the first (histogram) pass, before its finish_pass(): for
  // callers that learn m from the same pass (sce counts its non-zero variances). The
  // selector must have been built with 0 < m < n so that the histogram is gathered.
  void set_target(uint64_t m);

  Stage stage() const { return stage_; }
  int passes_left() const;  // upper bound on the passes still needed

  // Per-accumulate-call scratch: histograms are built locally and merged once.
  struct Local {
    std::vector<uint32_t> hist;
    uint32_t low_or = 0;
  };
  void observe(Local& local, uint64_t block, const uint32_t* keys, size_t n);
  void commit(Local& local);
  void finish_pass();

  const TopCut& cut() const { return cut_; }
  // Number of keys == threshold before block b (valid after the tie pass).
  uint64_t equal_before(uint64_t block) const { return cut_.cut_ties ? eq_before_[block] : 0; }
  uint32_t threshold() const { return cut_.threshold; }

 private:
  void init(uint64_t blocks);
  void resolve_hi();
  void resolve_lo();
  void after_threshold();

  uint64_t n_, m_;
  bool zero_neutral_, values_only_;
  Stage stage_ = kHi;
  uint32_t hi_bin_ = 0;
  uint64_t above_ = 0;  // keys strictly above the current bin
  std::vector<uint64_t> hist_;
  uint32_t low_or_ = 0;
  uint64_t blocks_ = 0;
  std::vector<uint64_t> eq_before_;  // per block counts, then exclusive prefix sums
  TopCut cut_;
  std::mutex mu_;
};

// Applies a TopCut to the keys of consecutive elements, with `rank` the number of keys ==
// threshold seen before keys[0] (updated). mask[i] = 1.0f if selected else 0.0f.
void apply_top_cut(const TopCut& cut, const uint32_t* keys, size_t n, uint64_t* rank, float* mask);

}  // namespace amalgam
