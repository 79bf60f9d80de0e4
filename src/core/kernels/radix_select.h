// Exact streaming selection of the m largest keys of a tensor (TIES top-k, breadcrumbs
// ranks, sce top-k of variance, arcee_fusion quantiles). Keys are the f32 bit patterns
// of non-negative values (|x| with the sign bit cleared), which order like the values.
// Order: key descending, then flat index ascending (METHODS.md §8.4: among equal
// magnitudes the lower index ranks first). Passes over the data:
//   1. histogram of the high 16 key bits (32768 bins) -> the bin B holding the m-th key,
//      its exact population, and how many of its keys have low bits set (bf16-sourced
//      keys have none: then B's value is the threshold T). Each chunk's counts of a
//      window of bins around an estimate of B (from a sample, enable_window_sample, or
//      else from the first chunk) are kept; when B falls in it, they give the per-chunk
//      counts of keys == T and no further pass is needed;
//   2. usually: collect (key, index) of the elements in B (a buffer bounded by B's exact
//      count, at most kMaxCandidates) and sort it -> the threshold T and the last
//      selected index among keys == T; done, the element-wise test is then
//      `key > T || (key == T && index <= cut_index)`;
//   2'. when B is too large for a buffer: histogram of the low 16 bits inside B -> T, then
//   3'. per-block counts of keys == T, prefix-summed, so the element-wise pass knows each
//      equal key's rank (`rank < need`) (also the pass after 1. when T = B but the
//      window missed B).
// Tensors of at most kSmall keys skip the histogram: one candidate pass over all keys.
// Bracketing (enable_bracket) replaces pass 1 when a sample of the keys taken before it
// (sample / end_sample: about bracket_sample_size() keys spread over the tensor) gives a
// key range [lo, hi] that holds ranks m/n +- delta of the sample, and then holds the m-th
// key with high probability: the first pass counts the keys above hi and collects those
// inside (kernels/bracket_scan.h: a vector compare per key instead of a histogram
// increment) and decides in that one pass. A bracket that misses the m-th key, or that
// holds more than max_candidates keys, costs one wasted pass: the histogram passes
// follow, exact either way.
// A window sample (enable_window_sample, without a bracket) makes the first pass a window
// scan instead (kernels/window_scan.h): the keys above the sample's sure bins are counted
// and only those inside are histogrammed; it decides as pass 1 does when the m-th key
// falls inside, and a miss costs one wasted pass (then the histogram passes).
// So 1 pass when the first pass decides (bf16-sourced keys, B inside the window, or no
// cut through B), 2 in general, 3 in the fallback. Callers carry the rank counter
// across the blocks of a chunk: equal_before() is exact at the first block of every
// chunk of the statistics passes (the executor cuts every pass the same way). No tie
// handling is needed when T's value is 0 and the caller said zeros are neutral, nor for
// value-only queries (quantiles).
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "kernels/bracket_scan.h"

namespace amalgam {

inline uint32_t abs_key(float x) {
  uint32_t u;
  __builtin_memcpy(&u, &x, 4);
  return u & 0x7fffffffu;
}

// Pure kernels (also used directly by tests).
// hist[t * 32768 + (key >> 16)] += 1 + (low 16 bits != 0) << 32 with t = i % 4: counts,
// and counts of keys with low bits, in one increment; four interleaved tables (summed by
// the reader) so that repeated bins do not serialize on one counter.
void key_histogram_hi(const uint32_t* keys, size_t n, uint64_t* hist4x32768);
// key_histogram_hi of abs_key(x - b).
void delta_histogram_hi(const float* x, const float* b, size_t n, uint64_t* hist4x32768);
void delta_histogram_hi(const uint16_t* x, const uint16_t* b, size_t n, uint64_t* hist4x32768);  // bf16 bits
void key_histogram_lo(const uint32_t* keys, size_t n, uint32_t hi, uint64_t* hist65536);
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
  enum Stage { kHi, kBracket, kWindow, kCand, kLo, kEq, kDone };
  static constexpr uint64_t kMaxCandidates = uint64_t{1} << 22;
  // Tensors of at most this many keys skip the histogram: all keys are candidates.
  static constexpr uint64_t kSmall = 65536;

  // Select the m largest of n keys; `blocks` reduction blocks (for fallback tie ranks).
  // zero_neutral: keys == 0 need no tie handling (their values do not change anything).
  // values_only: only the threshold value is wanted.
  TopSelector(uint64_t n, uint64_t m, uint64_t blocks, bool zero_neutral, bool values_only);
  ~TopSelector();
  // Changes m while still in the first (histogram) pass, before its finish_pass(): for
  // callers that learn m from the same pass (sce counts its non-zero variances). The
  // selector must have been built with 0 < m < n so that the histogram is gathered.
  void set_target(uint64_t m);
  // Largest threshold-bin population handled with a candidate buffer (tests lower it to
  // exercise the histogram fallback).
  void set_max_candidates(uint64_t n) { max_candidates_ = n; }
  // Bytes of first-pass window counts kept before they are given up for a counting pass
  // (default kWindowBudget; tests lower it).
  void set_window_budget(uint64_t bytes) { window_budget_ = bytes; }
  // Tensors of at most n keys take the candidate pass over all keys (default kSmall;
  // tests set 0 to exercise the histogram on small data). Before the first observe().
  void set_small_limit(uint64_t n);

  // Bracketing (see above); a no-op for small tensors and value-only queries.
  void enable_bracket() { want_bracket_ = !small_ && !values_only_; }
  // Without a bracket: the sample places a window of bins that surely holds the m-th key,
  // and the first pass is a window scan (see above; no candidates, unlike a bracket). The
  // window's per-chunk counts give the ranks among equal keys. Without a sample the first
  // chunk's histogram picks that window, which must then be wide (one chunk is a few rows,
  // unlike the tensor): up to kMaxWindow bins per chunk. With enable_bracket too, the
  // window's sample chooses: a window when the keys of its sure bins are mostly their
  // bin's value (bf16 task vectors), else a bracket (continuous keys: the window would
  // need a candidate pass after it), which then takes a sample of its own.
  void enable_window_sample() { want_window_ = !small_ && !values_only_; }
  // Keys wanted in the sample; 0 when neither applies (then no sample needed), or when
  // the sample has been taken. With both enabled, a window's (smaller) sample comes first;
  // when it chooses a bracket, this asks again, for the bracket's sample.
  uint64_t bracket_sample_size() const;
  // Feed the sample (one thread, before the first pass; one call per piece of
  // neighbouring keys), then end_sample(); again while bracket_sample_size() > 0.
  void sample(const uint32_t* keys, size_t n);
  void end_sample();
  // Bracketed first passes that missed (process-wide, for tests and diagnostics).
  static uint64_t bracket_misses();

  Stage stage() const { return stage_; }
  int passes_left() const;  // upper bound on the passes still needed

  // Per-accumulate-call scratch, merged once per call under the selector's mutex. The
  // first pass's histograms are pooled: a chunk borrows one that keeps accumulating
  // across chunks (no 32768-bin clear and sum per chunk), and only the window's bins
  // are compared before and after it.
  struct Local {
    std::vector<uint64_t>* pooled = nullptr;  // kHi: borrowed histogram
    bool fresh = false;                       // the borrowed histogram was all zero
    std::vector<uint64_t> before;             // its window bins when borrowed
    std::vector<uint64_t> follower_before;    // the same for the follower's window
    std::vector<uint64_t> hist;               // kLo; kWindow: the window's bins
    std::vector<uint64_t> cand;
    std::vector<uint64_t> scratch;  // branch-free compaction buffer (kCand)
    std::vector<uint32_t> keys;     // observe_delta outside the histogram pass
    uint64_t first_block = ~uint64_t{0};  // first block observed since the last commit
    uint64_t above = 0;                   // kBracket / kWindow: keys above it
  };
  // keys[i] is the key of element first_index + i, inside reduction block `block`.
  void observe(Local& local, uint64_t block, uint64_t first_index, const uint32_t* keys, size_t n);
  // The same for keys = abs_key(x - b), computed here: in the histogram pass fused into
  // the histogram loop (no key array written and read back).
  // X is float or uint16_t (bf16 bits: the executor's bf16 path, methods/method.h).
  template <class X>
  void observe_delta(Local& local, uint64_t block, uint64_t first_index, const X* x, const X* b, size_t n);
  // Two selectors over the same keys, both in their window pass (breadcrumbs' two cuts):
  // one scan serves both windows, with the counts of observe_delta on each. Returns false,
  // observing nothing, when either is in another stage.
  template <class X>
  static bool observe_delta_pair(TopSelector& p, Local& lp, TopSelector& q, Local& lq, uint64_t block, const X* x,
                                 const X* b, size_t n);
  void commit(Local& local);
  // Takes the first-pass histogram of another selector over the same keys (both still in
  // kHi, before finish_pass): breadcrumbs' two cuts then histogram the data once.
  void share_histogram_from(TopSelector& other);
  // Makes this selector (over the same keys, observing nothing in the first pass) record
  // its own window counts from `leader`'s first-pass histograms, so that after
  // share_histogram_from(leader) it too decides in one pass. One follower per leader.
  void follow(TopSelector& leader);
  // The follower takes window counts only while both are in their histogram pass (one
  // of them may be bracketing instead, or done).
  void finish_pass();

  const TopCut& cut() const { return cut_; }
  // Number of keys == threshold before block b (ByRank only); exact at the first block of
  // every chunk (see above).
  uint64_t equal_before(uint64_t block) const { return cut_.ties == TopCut::ByRank ? eq_before_[block] : 0; }
  uint32_t threshold() const { return cut_.threshold; }

 private:
  void init();
  void resolve_hi();
  void resolve_cand();
  void resolve_lo();
  void resolve_bracket();
  void resolve_window();
  // The m-th key is in bin `bin`, below `above` keys; the bin holds in_bin keys, above_v
  // of them with low bits set: the threshold, or the pass that finds it.
  void decide_in_bin(uint32_t bin, uint64_t above, uint64_t in_bin, uint64_t above_v);
  void start_histogram_passes();  // after a bracket or window that missed
  void observe_bracket(Local& local, uint64_t block, const BracketCounts& counts, size_t kept);
  void after_threshold(uint64_t equal);
  void borrow(Local& local);
  void record_window(const Local& local, const std::vector<uint64_t>& before);
  void record_window_counts(uint64_t first_block, const uint64_t* packed);
  std::vector<uint64_t> window_bins(const uint64_t* hist) const;
  void gather();
  bool ranks_from_window(uint32_t bin);
  void sure_bins(const std::vector<uint32_t>& keys, const std::vector<size_t>& ends, const std::vector<uint64_t>& hist,
                 int* bottom, int* top) const;
  bool follows_now() const { return follower_ && stage_ == kHi && follower_->stage_ == kHi; }

  uint64_t n_, m_;
  bool zero_neutral_, values_only_;
  bool small_ = false;
  bool full_keys_ = false;  // cand_ packs whole keys (small tensors, brackets)
  bool want_bracket_ = false, want_window_ = false;
  bool bracket_round_ = false;  // both wanted, the window's sample chose a bracket: its sample next
  bool sampled_ = false;        // no (further) sample wanted
  std::vector<uint32_t> sample_keys_;     // bracket sample, piece after piece
  std::vector<size_t> sample_pieces_;     // end of each piece in sample_keys_
  Bracket br_;                         // kBracket: where the bracket lies
  bool br_bottom_ = false;             // the bracket reaches key 0 (zeros left out if neutral)
  std::vector<uint64_t> br_eq_;        // per block x kBracketBins: keys == a counted bin's value
  std::vector<uint64_t> br_frac_;      // per block x kBracketBins: a counted bin's other keys
  std::atomic<bool> br_overflow_{false};  // more candidates than max_candidates_
  uint64_t blocks_;
  uint64_t max_candidates_ = kMaxCandidates;
  Stage stage_ = kHi;
  uint32_t hi_bin_ = 0;
  uint64_t above_ = 0;  // keys strictly above the current bin
  std::vector<uint64_t> hist_;  // kHi: counts per bin; kLo: counts per low value
  std::vector<uint64_t> low_;   // kHi: per bin, counts of keys with low bits set
  std::vector<uint64_t> cand_;
  // First pass: every histogram handed out (borrow), and those not borrowed now.
  std::vector<std::unique_ptr<std::vector<uint64_t>>> pool_;
  std::vector<std::vector<uint64_t>*> idle_;
  // First-pass window (record_window): bins [win_lo_, win_hi_], and per commit its first
  // block and the counts of those bins.
  bool win_set_ = false, win_complete_ = true;
  TopSelector* follower_ = nullptr;
  uint32_t win_lo_ = 0, win_hi_ = 0;
  std::vector<std::pair<uint64_t, std::vector<uint32_t>>> win_counts_;
  std::vector<uint64_t> win_hist_;  // kWindow: the tensor's counts of the window's bins
  uint64_t win_bytes_ = 0;  // of win_counts_, so far
  static constexpr uint32_t kMaxWindow = 4096;                   // bins
  static constexpr uint64_t kWindowBudget = uint64_t{32} << 20;  // bytes of window counts
  uint64_t window_budget_ = kWindowBudget;
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
