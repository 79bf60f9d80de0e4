// Exact streaming selection of the m largest keys of a tensor (TIES top-k, breadcrumbs
// ranks, sce top-k of variance, arcee_fusion quantiles). Keys are the f32 bit patterns
// of non-negative values (|x| with the sign bit cleared), which order like the values.
// Order: key descending, then flat index ascending (METHODS.md §8.4: among equal
// magnitudes the lower index ranks first). Passes over the data:
//   1. histogram of the high 16 key bits (32768 bins) -> the bin B holding the m-th key,
//      its exact population, and an OR of the low 16 bits (bf16-sourced keys have none);
//   2. usually: collect (key, index) of the elements in B (a buffer bounded by B's exact
//      count, at most kMaxCandidates) and sort it -> the threshold T and the last
//      selected index among keys == T; done, the element-wise test is then
//      `key > T || (key == T && index <= cut_index)`;
//   2'. when B is too large for a buffer: histogram of the low 16 bits inside B -> T, then
//   3'. per-block counts of keys == T, prefix-summed, so the element-wise pass knows each
//      equal key's rank (`rank < need`).
// So 2 passes in general, 1 when the first pass already decides (no cut through B), 3 in
// the fallback. No tie handling is needed when T's value is 0 and the caller said zeros
// are neutral, nor for value-only queries (quantiles).
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

// The resolved selection of element (key, index): key > threshold, or key == threshold
// and: ties == All: always; ByIndex: index <= cut_index; ByRank: its rank among equal
// keys in index order < need.
struct TopCut {
  enum Ties { All, ByIndex, ByRank };
  uint32_t threshold = 0xffffffffu;  // default: nothing is selected
  Ties ties = All;
  uint64_t cut_index = 0;
  uint64_t need = 0;
};

class TopSelector {
 public:
  enum Stage { kHi, kCand, kLo, kEq, kDone };
  static constexpr uint64_t kMaxCandidates = uint64_t{1} << 22;

  // Select the m largest of n keys; `blocks` reduction blocks (for fallback tie ranks).
  // zero_neutral: keys == 0 need no tie handling (their values do not change anything).
  // values_only: only the threshold value is wanted.
  TopSelector(uint64_t n, uint64_t m, uint64_t blocks, bool zero_neutral, bool values_only);
  // Changes m while still in the first (histogram) pass, before its finish_pass(): for
  // callers that learn m from the same pass (sce counts its non-zero variances). The
  // selector must have been built with 0 < m < n so that the histogram is gathered.
  void set_target(uint64_t m);
  // Largest threshold-bin population handled with a candidate buffer (tests lower it to
  // exercise the histogram fallback).
  void set_max_candidates(uint64_t n) { max_candidates_ = n; }

  Stage stage() const { return stage_; }
  int passes_left() const;  // upper bound on the passes still needed

  // Per-accumulate-call scratch, merged once per call under the selector's mutex.
  struct Local {
    std::vector<uint32_t> hist;
    std::vector<uint64_t> cand;
    std::vector<uint64_t> scratch;  // branch-free compaction buffer (kCand)
    uint32_t low_or = 0;
  };
  // keys[i] is the key of element first_index + i, inside reduction block `block`.
  void observe(Local& local, uint64_t block, uint64_t first_index, const uint32_t* keys, size_t n);
  void commit(Local& local);
  // Takes the first-pass histogram of another selector over the same keys (both still in
  // kHi, before finish_pass): breadcrumbs' two cuts then histogram the data once.
  void share_histogram_from(const TopSelector& other);
  void finish_pass();

  const TopCut& cut() const { return cut_; }
  // Number of keys == threshold before block b (ByRank only).
  uint64_t equal_before(uint64_t block) const { return cut_.ties == TopCut::ByRank ? eq_before_[block] : 0; }
  uint32_t threshold() const { return cut_.threshold; }

 private:
  void init();
  void resolve_hi();
  void resolve_cand();
  void resolve_lo();
  void after_threshold(uint64_t equal);

  uint64_t n_, m_;
  bool zero_neutral_, values_only_;
  uint64_t blocks_;
  uint64_t max_candidates_ = kMaxCandidates;
  Stage stage_ = kHi;
  uint32_t hi_bin_ = 0;
  uint64_t above_ = 0;  // keys strictly above the current bin
  std::vector<uint64_t> hist_;
  std::vector<uint64_t> cand_;
  uint32_t low_or_ = 0;
  std::vector<uint64_t> eq_before_;  // per block counts, then exclusive prefix sums
  TopCut cut_;
  std::mutex mu_;
};

// Applies a TopCut to the keys of elements first_index.., with `rank` the number of keys
// == threshold seen before keys[0] in this block (ByRank; updated).
// mask[i] = 1.0f if selected else 0.0f.
void apply_top_cut(const TopCut& cut, uint64_t first_index, const uint32_t* keys, size_t n, uint64_t* rank,
                   float* mask);

}  // namespace amalgam
