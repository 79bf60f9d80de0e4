// TopSelector: the radix-select state machine of radix_select.h.
#include "kernels/radix_select.h"

#include "kernels/convert.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "kernels/bracket_scan.h"
#include "kernels/window_scan.h"
#include "kernels/simd.h"

namespace amalgam {
namespace {

constexpr size_t kSubTables = 4;  // key_histogram_hi's interleaved tables

// First-pass histograms (kSubTables x 32768 words, 1 MiB) are reused across tensors:
// a fresh one for every borrower of every tensor cost a page-faulting allocation and
// clear each time.
std::atomic<uint64_t> g_bracket_misses{0};

std::mutex g_free_mu;
std::vector<std::unique_ptr<std::vector<uint64_t>>> g_free;

std::unique_ptr<std::vector<uint64_t>> take_zeroed_histogram() {
  {
    std::lock_guard<std::mutex> lock(g_free_mu);
    if (!g_free.empty()) {
      auto h = std::move(g_free.back());
      g_free.pop_back();
      return h;
    }
  }
  return std::make_unique<std::vector<uint64_t>>(kSubTables * 32768, 0);
}

// `h` must be all zero.
void give_back(std::unique_ptr<std::vector<uint64_t>> h) {
  std::lock_guard<std::mutex> lock(g_free_mu);
  if (g_free.size() < 16) g_free.push_back(std::move(h));
}

// Walks bins from the largest key down until m keys are covered: the bin of the m-th key
// (0 if none); *above (keys above the bins on entry) gets the keys above that bin.
uint32_t bin_of_mth(const uint64_t* hist, uint32_t bins, uint64_t m, uint64_t* above) {
  for (uint32_t b = bins; b-- > 0;) {
    if (*above + hist[b] >= m) return b;
    *above += hist[b];
  }
  return 0;
}

uint64_t bin_total(const uint64_t* h, uint32_t b) {
  uint64_t v = 0;
  for (size_t t = 0; t < kSubTables; ++t) v += h[t * 32768 + b];
  return v;
}

}  // namespace

// Four sub-histograms, element i into table i % 4: a run of keys in one bin then updates
// four counters in turn instead of waiting on one store-to-load chain (0.33 vs 0.46 ns a
// key on bf16 task vectors). The tables are summed when read. key_at(i) gives key i.
template <class KeyAt>
inline __attribute__((always_inline)) void histogram_hi4(size_t n, uint64_t* hist, KeyAt key_at) {
  const auto add = [](uint64_t* h, uint32_t k) { h[k >> 16] += 1 + (static_cast<uint64_t>((k & 0xffffu) != 0) << 32); };
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const uint32_t k0 = key_at(i), k1 = key_at(i + 1), k2 = key_at(i + 2), k3 = key_at(i + 3);
    add(hist, k0);
    add(hist + 32768, k1);
    add(hist + 2 * 32768, k2);
    add(hist + 3 * 32768, k3);
  }
  for (; i < n; ++i) add(hist, key_at(i));
}

AMALGAM_SIMD_CLONES void key_histogram_hi(const uint32_t* keys, size_t n, uint64_t* hist) {
  histogram_hi4(n, hist, [keys](size_t i) { return keys[i]; });
}

AMALGAM_SIMD_CLONES void delta_histogram_hi(const float* x, const float* b, size_t n, uint64_t* hist) {
  histogram_hi4(n, hist, [x, b](size_t i) { return abs_key(x[i] - b[i]); });
}
// From bf16 the keys are computed a stretch at a time in a vector loop, then counted:
// widening each element in the scalar counting loop made a breadcrumbs merge 15% slower.
AMALGAM_SIMD_CLONES void delta_histogram_hi(const uint16_t* x, const uint16_t* b, size_t n, uint64_t* hist) {
  constexpr size_t kStretch = 512;
  uint32_t keys[kStretch];
  for (size_t s = 0; s < n; s += kStretch) {
    const size_t m = std::min(kStretch, n - s);
    for (size_t i = 0; i < m; ++i) keys[i] = abs_key(load_bf16(x[s + i]) - load_bf16(b[s + i]));
    histogram_hi4(m, hist, [&keys](size_t i) { return keys[i]; });
  }
}

void key_histogram_lo(const uint32_t* keys, size_t n, uint32_t hi, uint64_t* hist) {
  for (size_t i = 0; i < n; ++i)
    if ((keys[i] >> 16) == hi) ++hist[keys[i] & 0xffffu];
}

AMALGAM_SIMD_CLONES uint64_t count_key_equal(const uint32_t* keys, size_t n, uint32_t key) {
  uint32_t c = 0;
  for (size_t i = 0; i < n; ++i) c += keys[i] == key;
  return c;
}

// Writes (inverted low key bits << 48 | index) of the keys in high bin `hi` to out:
// ascending order of these puts larger keys first, then lower indices.
AMALGAM_SIMD_CLONES size_t collect_bin(const uint32_t* keys, size_t n, uint32_t hi, uint64_t first_index,
                                       uint64_t* out) {
  size_t kept = 0;
  for (size_t i = 0; i < n; ++i) {
    out[kept] = (static_cast<uint64_t>(0xffffu - (keys[i] & 0xffffu)) << 48) | (first_index + i);
    kept += (keys[i] >> 16) == hi;
  }
  return kept;
}

// Every key of a small tensor as (inverted key << 32 | index): ascending order is key
// descending, then index ascending.
AMALGAM_SIMD_CLONES void collect_all(const uint32_t* keys, size_t n, uint64_t first_index, uint64_t* out) {
  for (size_t i = 0; i < n; ++i) out[i] = (static_cast<uint64_t>(0x7fffffffu - keys[i]) << 32) | (first_index + i);
}

TopSelector::TopSelector(uint64_t n, uint64_t m, uint64_t blocks, bool zero_neutral, bool values_only)
    : n_(n), m_(std::min(m, n)), zero_neutral_(zero_neutral), values_only_(values_only), blocks_(blocks) {
  // The first pass packs a bin's count and its count of keys with low bits into one
  // 64-bit word (32 bits each).
  if (n >= (uint64_t{1} << 32))
    throw std::length_error("magnitude selection over a tensor of 2^32 or more elements is not supported");
  small_ = n <= kSmall;
  full_keys_ = small_;
  init();
}

void TopSelector::set_small_limit(uint64_t n) {
  small_ = n_ <= n;
  full_keys_ = small_;
  stage_ = kHi;
  init();
}

void TopSelector::set_target(uint64_t m) {
  m_ = std::min(m, n_);
  cut_ = TopCut{};
  stage_ = kHi;
  init();
}

void TopSelector::init() {
  if (m_ == 0) {
    cut_ = TopCut{};  // threshold above every key
    stage_ = kDone;
    return;
  }
  if (m_ == n_ && !values_only_) {
    cut_ = TopCut{0, TopCut::All, 0, 0};  // every key >= 0
    stage_ = kDone;
    return;
  }
  if (small_) {
    // A small tensor: its keys are the candidates (one pass, no 32768-bin histogram).
    above_ = 0;
    stage_ = kCand;
    return;
  }
  // hist_ / low_ are sized in gather(): mergers are also built only to validate a plan
  // and estimate its memory, and 512 KiB of zeroed pages per selector was most of a ties
  // merge's page faults.
}

int TopSelector::passes_left() const {
  switch (stage_) {
    case kHi: return values_only_ ? 2 : 3;
    case kBracket: return 1;  // unless it misses: then kHi's passes follow
    case kWindow: return 1;   // unless the m-th key needs a candidate pass, or it misses
    case kCand: return 1;
    case kLo: return values_only_ ? 1 : 2;
    case kEq: return 1;
    case kDone: return 0;
  }
  return 0;
}

void TopSelector::observe(Local& local, uint64_t block, uint64_t first_index, const uint32_t* keys, size_t n) {
  local.first_block = std::min(local.first_block, block);
  switch (stage_) {
    case kHi:
      if (!local.pooled) borrow(local);
      key_histogram_hi(keys, n, local.pooled->data());
      break;
    case kBracket: {
      if (br_overflow_.load(std::memory_order_relaxed)) break;
      if (local.scratch.size() < n + kBracketScanSlack) local.scratch.resize(n + kBracketScanSlack);
      BracketCounts counts;
      const size_t kept = bracket_scan_keys(keys, n, br_, first_index, local.scratch.data(), &counts);
      observe_bracket(local, block, counts, kept);
      break;
    }
    case kWindow:
      if (local.hist.empty()) local.hist.assign(win_hi_ - win_lo_ + 1, 0);
      window_scan_keys(keys, n, KeyWindow{win_lo_, win_hi_}, local.hist.data(), &local.above);
      break;
    case kCand: {
      if (small_) {
        const size_t at = local.cand.size();
        local.cand.resize(at + n);
        collect_all(keys, n, first_index, local.cand.data() + at);
        break;
      }
      // Branch-free compaction: every element is written, only matches advance `kept`
      // (a data-dependent branch per element mispredicted; it was 20% of a ties merge).
      if (local.scratch.size() < n) local.scratch.resize(n);
      size_t kept = collect_bin(keys, n, hi_bin_, first_index, local.scratch.data());
      local.cand.insert(local.cand.end(), local.scratch.begin(), local.scratch.begin() + static_cast<std::ptrdiff_t>(kept));
      break;
    }
    case kLo:
      if (local.hist.empty()) local.hist.assign(65536, 0);
      key_histogram_lo(keys, n, hi_bin_, local.hist.data());
      break;
    case kEq:
      // Each block belongs to exactly one chunk, so no other thread touches this slot.
      eq_before_[block] += count_key_equal(keys, n, cut_.threshold);
      break;
    case kDone:
      break;
  }
}

template <class X>
void TopSelector::observe_delta(Local& local, uint64_t block, uint64_t first_index, const X* x, const X* b, size_t n) {
  if (stage_ == kHi) {
    local.first_block = std::min(local.first_block, block);
    if (!local.pooled) borrow(local);
    delta_histogram_hi(x, b, n, local.pooled->data());
    return;
  }
  if (stage_ == kBracket) {
    if (br_overflow_.load(std::memory_order_relaxed)) return;
    if (local.scratch.size() < n + kBracketScanSlack) local.scratch.resize(n + kBracketScanSlack);
    BracketCounts counts;
    const size_t kept = bracket_scan_delta(x, b, n, br_, first_index, local.scratch.data(), &counts);
    observe_bracket(local, block, counts, kept);
    return;
  }
  if (stage_ == kWindow) {
    local.first_block = std::min(local.first_block, block);
    if (local.hist.empty()) local.hist.assign(win_hi_ - win_lo_ + 1, 0);
    window_scan_delta(x, b, n, KeyWindow{win_lo_, win_hi_}, local.hist.data(), &local.above);
    return;
  }
  if (local.keys.size() < n) local.keys.resize(n);
  for (size_t i = 0; i < n; ++i) local.keys[i] = abs_key(load_bf16(x[i]) - load_bf16(b[i]));
  observe(local, block, first_index, local.keys.data(), n);
}
template void TopSelector::observe_delta(Local&, uint64_t, uint64_t, const float*, const float*, size_t);
template void TopSelector::observe_delta(Local&, uint64_t, uint64_t, const uint16_t*, const uint16_t*, size_t);

template <class X>
bool TopSelector::observe_delta_pair(TopSelector& p, Local& lp, TopSelector& q, Local& lq, uint64_t block, const X* x,
                                     const X* b, size_t n) {
  if (p.stage_ != kWindow || q.stage_ != kWindow) return false;
  for (auto [s, l] : {std::pair<TopSelector*, Local*>{&p, &lp}, {&q, &lq}}) {
    l->first_block = std::min(l->first_block, block);
    if (l->hist.empty()) l->hist.assign(s->win_hi_ - s->win_lo_ + 1, 0);
  }
  window_scan_delta2(x, b, n, WindowTally{KeyWindow{p.win_lo_, p.win_hi_}, lp.hist.data(), &lp.above},
                     WindowTally{KeyWindow{q.win_lo_, q.win_hi_}, lq.hist.data(), &lq.above});
  return true;
}
template bool TopSelector::observe_delta_pair(TopSelector&, Local&, TopSelector&, Local&, uint64_t, const float*,
                                              const float*, size_t);
template bool TopSelector::observe_delta_pair(TopSelector&, Local&, TopSelector&, Local&, uint64_t, const uint16_t*,
                                              const uint16_t*, size_t);

// Hands a first-pass histogram to a chunk. Until the window is known only all-zero ones
// are handed out, so the first commit sees one chunk's counts alone; afterwards an idle
// one is reused and its window bins are noted, to take the chunk's own counts by
// difference.
void TopSelector::borrow(Local& local) {
  std::lock_guard<std::mutex> lock(mu_);
  if (win_set_ && !idle_.empty()) {
    local.pooled = idle_.back();
    idle_.pop_back();
    local.fresh = false;
    local.before = window_bins(local.pooled->data());
    if (follows_now()) local.follower_before = follower_->window_bins(local.pooled->data());
    return;
  }
  pool_.push_back(take_zeroed_histogram());
  local.pooled = pool_.back().get();
  local.fresh = true;
  local.before.clear();
  local.follower_before.clear();
}

// Equal keys go straight to their block's counters (each block belongs to one chunk, so
// no other thread touches them); candidates stay in the Local until commit, and a chunk
// that alone passes the cap gives up the bracket at once.
void TopSelector::observe_bracket(Local& local, uint64_t block, const BracketCounts& counts, size_t kept) {
  local.above += counts.above;
  for (uint32_t j = 0; j < kBracketBins; ++j) {
    br_eq_[block * kBracketBins + j] += counts.equal[j];
    br_frac_[block * kBracketBins + j] += counts.frac[j];
  }
  if (local.cand.size() + kept > max_candidates_) {
    br_overflow_.store(true, std::memory_order_relaxed);
    local.cand.clear();
    return;
  }
  local.cand.insert(local.cand.end(), local.scratch.begin(), local.scratch.begin() + static_cast<std::ptrdiff_t>(kept));
}

void TopSelector::commit(Local& local) {
  if (!local.pooled && local.hist.empty() && local.cand.empty() && local.above == 0) {
    local.first_block = ~uint64_t{0};
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (stage_ == kBracket) {
    above_ += local.above;
    local.above = 0;
    if (!br_overflow_.load(std::memory_order_relaxed) && cand_.size() + local.cand.size() > max_candidates_)
      br_overflow_.store(true, std::memory_order_relaxed);
    if (br_overflow_.load(std::memory_order_relaxed)) {
      cand_.clear();
      cand_.shrink_to_fit();
    } else {
      cand_.insert(cand_.end(), local.cand.begin(), local.cand.end());
    }
    local.cand.clear();
    local.first_block = ~uint64_t{0};
    return;
  }
  if (stage_ == kWindow) {
    above_ += local.above;
    local.above = 0;
    if (!local.hist.empty()) {
      for (size_t i = 0; i < local.hist.size(); ++i) win_hist_[i] += local.hist[i];
      record_window_counts(local.first_block, local.hist.data());
      local.hist.clear();
    }
    local.first_block = ~uint64_t{0};
    return;
  }
  if (local.pooled) {
    if (!values_only_) record_window(local, local.before);
    if (follows_now()) {
      std::lock_guard<std::mutex> follower_lock(follower_->mu_);
      follower_->record_window(local, local.follower_before);
    }
    idle_.push_back(local.pooled);
    local.pooled = nullptr;
  }
  for (size_t i = 0; i < local.hist.size(); ++i) hist_[i] += local.hist[i];
  cand_.insert(cand_.end(), local.cand.begin(), local.cand.end());
  local.hist.clear();
  local.cand.clear();
  local.first_block = ~uint64_t{0};
}

// The window bins of one first-pass histogram (empty until the window is chosen).
std::vector<uint64_t> TopSelector::window_bins(const uint64_t* h) const {
  std::vector<uint64_t> v;
  if (!win_set_) return v;
  v.reserve(win_hi_ - win_lo_ + 1);
  for (uint32_t b = win_lo_; b <= win_hi_; ++b) v.push_back(bin_total(h, b));
  return v;
}

void TopSelector::follow(TopSelector& leader) { leader.follower_ = this; }

// The first commit picks the window: the bins holding ranks m/n +- 5 % of its own keys
// (plus 2 bins each side, at most 4096 bins); every commit keeps its counts of them,
// taken by difference from `before` when the histogram was not fresh.
void TopSelector::record_window(const Local& local, const std::vector<uint64_t>& before) {
  const uint64_t* h = local.pooled->data();
  if (!win_set_) {
    if (!local.fresh) return;
    uint64_t total = 0;
    for (uint32_t b = 0; b < 32768; ++b) total += bin_total(h, b) & 0xffffffffu;
    if (total == 0) return;
    const double f = static_cast<double>(m_) / static_cast<double>(n_);
    const double lo_rank = std::max(0.0, f - 0.05) * static_cast<double>(total);
    const double hi_rank = std::min(1.0, f + 0.05) * static_cast<double>(total);
    int top = -1, bottom = -1;
    uint64_t above = 0;
    for (int b = 32767; b >= 0; --b) {
      const uint64_t c = bin_total(h, static_cast<uint32_t>(b)) & 0xffffffffu;
      if (c == 0) continue;
      // Bin b holds ranks (above, above + c]: inside the window when that meets it.
      if (static_cast<double>(above + c) >= lo_rank && top < 0) top = b;
      if (static_cast<double>(above) <= hi_rank) bottom = b;
      above += c;
    }
    if (top < 0) return;
    top = std::min(32767, top + 2);
    bottom = std::max(0, std::max(bottom - 2, top - static_cast<int>(kMaxWindow) + 1));
    win_lo_ = static_cast<uint32_t>(bottom);
    win_hi_ = static_cast<uint32_t>(top);
    win_set_ = true;
  }
  if (!local.fresh && before.size() != win_hi_ - win_lo_ + 1) {
    win_complete_ = false;  // borrowed before the window was known: no baseline
    return;
  }
  std::vector<uint64_t> chunk(win_hi_ - win_lo_ + 1);
  for (uint32_t b = win_lo_; b <= win_hi_; ++b)
    chunk[b - win_lo_] = bin_total(h, b) - (local.fresh ? 0 : before[b - win_lo_]);
  record_window_counts(local.first_block, chunk.data());
}

// One chunk's counts of the window's bins (packed as the first pass packs them).
void TopSelector::record_window_counts(uint64_t first_block, const uint64_t* packed) {
  if (!win_complete_) return;
  // The counts grow with the tensor (one set per chunk): past the budget they are
  // dropped, and the ranks take a counting pass instead (bounded memory).
  const uint32_t width = win_hi_ - win_lo_ + 1;
  win_bytes_ += width * sizeof(uint32_t);
  if (win_bytes_ > window_budget_) {
    win_complete_ = false;
    win_counts_.clear();
    win_counts_.shrink_to_fit();
    return;
  }
  // Keys equal to the bin's value (low bits zero): count minus the count with low bits.
  std::vector<uint32_t> counts(width);
  for (uint32_t i = 0; i < width; ++i)
    counts[i] = static_cast<uint32_t>((packed[i] & 0xffffffffu) - (packed[i] >> 32));
  win_counts_.emplace_back(first_block, std::move(counts));
}

// Sums the pooled first-pass histograms into hist_ / low_ (once) and gives them back,
// zeroed, for the next tensor.
void TopSelector::gather() {
  if (hist_.size() != 32768) hist_.assign(32768, 0);
  if (low_.size() != 32768) low_.assign(32768, 0);
  if (pool_.empty()) return;
  for (auto& p : pool_) {
    uint64_t* h = p->data();
    // Read and cleared in one sweep (a separate clear was 3% of a ties merge).
    for (size_t t = 0; t < kSubTables; ++t)
      for (size_t i = 0; i < 32768; ++i) {
        const uint64_t v = h[t * 32768 + i];
        h[t * 32768 + i] = 0;
        hist_[i] += v & 0xffffffffu;
        low_[i] += v >> 32;
      }
    give_back(std::move(p));
  }
  pool_.clear();
  idle_.clear();
}

TopSelector::~TopSelector() {
  for (auto& p : pool_) {
    std::fill(p->begin(), p->end(), 0);
    give_back(std::move(p));
  }
}

// Keys == T (T = bin << 16) per chunk, from the window counts: the ranks of the
// element-wise pass without another pass. False when the window missed the bin.
bool TopSelector::ranks_from_window(uint32_t bin) {
  if (!win_set_ || !win_complete_ || bin < win_lo_ || bin > win_hi_) return false;
  eq_before_.assign(blocks_, 0);
  for (const auto& [block, counts] : win_counts_) {
    if (block >= blocks_) return false;
    eq_before_[block] += counts[bin - win_lo_];
  }
  uint64_t acc = 0;
  for (auto& c : eq_before_) {
    const uint64_t here = c;
    c = acc;
    acc += here;
  }
  return true;
}

void TopSelector::share_histogram_from(TopSelector& other) {
  other.gather();
  hist_ = other.hist_;
  low_ = other.low_;
}

void TopSelector::finish_pass() {
  switch (stage_) {
    case kHi: resolve_hi(); break;
    case kBracket: resolve_bracket(); break;
    case kWindow: resolve_window(); break;
    case kCand: resolve_cand(); break;
    case kLo: resolve_lo(); break;
    case kEq: {
      uint64_t acc = 0;
      for (auto& c : eq_before_) {
        uint64_t here = c;
        c = acc;
        acc += here;
      }
      stage_ = kDone;
      break;
    }
    case kDone: break;
  }
}

void TopSelector::resolve_hi() {
  gather();
  uint64_t above = 0;
  const uint32_t bin = bin_of_mth(hist_.data(), 32768, m_, &above);
  const uint64_t in_bin = hist_[bin], above_v = low_[bin];
  hist_.clear();
  hist_.shrink_to_fit();
  low_.clear();
  low_.shrink_to_fit();
  decide_in_bin(bin, above, in_bin, above_v);
}

// Walks the window's bins from the top, after the keys above it; a miss when the m-th key
// lies above or below them (the sample misled), then the histogram passes start.
void TopSelector::resolve_window() {
  uint64_t above = above_;
  int found = -1;
  if (above < m_) {
    for (int i = static_cast<int>(win_hi_ - win_lo_); i >= 0; --i) {
      const uint64_t c = win_hist_[static_cast<size_t>(i)] & 0xffffffffu;
      if (above + c >= m_) {
        found = i;
        break;
      }
      above += c;
    }
  }
  if (found < 0) {
    g_bracket_misses.fetch_add(1);
    start_histogram_passes();
    return;
  }
  const uint64_t v = win_hist_[static_cast<size_t>(found)];
  win_hist_ = {};
  decide_in_bin(win_lo_ + static_cast<uint32_t>(found), above, v & 0xffffffffu, v >> 32);
}

void TopSelector::decide_in_bin(uint32_t bin, uint64_t above, uint64_t in_bin, uint64_t above_v) {
  hi_bin_ = bin;
  above_ = above;
  const uint64_t need = m_ - above;
  // The bin's keys with low bits set are all above its value V = bin << 16. When fewer
  // than `need` of them exist, they are all selected and the threshold is V exactly
  // (bf16-sourced keys: nearly every key of the bin is V).
  if (need > above_v) {
    const uint64_t equal = in_bin - above_v;
    cut_.threshold = bin << 16;
    cut_.need = need - above_v;
    if (cut_.need == equal || values_only_ || (zero_neutral_ && cut_.threshold == 0)) {
      cut_.ties = TopCut::All;
      stage_ = kDone;
    } else if (ranks_from_window(bin)) {
      cut_.ties = TopCut::ByRank;
      stage_ = kDone;
    } else {
      after_threshold(equal);  // one pass counting keys == V per block
    }
    win_counts_.clear();
    return;
  }
  win_counts_.clear();
  if (in_bin <= max_candidates_) {
    cand_.reserve(in_bin);
    stage_ = kCand;
  } else {
    hist_.assign(65536, 0);
    stage_ = kLo;
  }
}

void TopSelector::resolve_cand() {
  // Only the need-th candidate and whether the next one shares its key matter: a
  // selection (linear) instead of a sort (the sort was 28% of a ties merge).
  const uint64_t need = m_ - above_;
  std::nth_element(cand_.begin(), cand_.begin() + static_cast<std::ptrdiff_t>(need - 1), cand_.end());
  const uint64_t last = cand_[need - 1];
  if (need < cand_.size()) {
    // The next candidate in order is the smallest of those after the need-th.
    auto next = std::min_element(cand_.begin() + static_cast<std::ptrdiff_t>(need), cand_.end());
    std::iter_swap(cand_.begin() + static_cast<std::ptrdiff_t>(need), next);
  }
  // Candidates are (inverted low 16 key bits << 48 | index), or for a small tensor and a
  // bracket (inverted key << 32 | index).
  const int shift = full_keys_ ? 32 : 48;
  if (full_keys_)
    cut_.threshold = 0x7fffffffu - static_cast<uint32_t>(last >> 32);
  else
    cut_.threshold = (hi_bin_ << 16) | (0xffffu - static_cast<uint32_t>(last >> 48));
  cut_.need = need;
  cut_.cut_index = last & ((uint64_t{1} << shift) - 1);
  // All keys == T selected? Then the index test is unnecessary.
  const bool all = need == cand_.size() || (cand_[need] >> shift) != (last >> shift);
  cut_.ties = (all || values_only_ || (zero_neutral_ && cut_.threshold == 0)) ? TopCut::All : TopCut::ByIndex;
  cand_.clear();
  cand_.shrink_to_fit();
  stage_ = kDone;
}

void TopSelector::resolve_lo() {
  uint64_t above = above_;
  const uint32_t lo = bin_of_mth(hist_.data(), 65536, m_, &above);
  cut_.threshold = (hi_bin_ << 16) | lo;
  cut_.need = m_ - above;
  const uint64_t equal = hist_[lo];
  hist_.clear();
  hist_.shrink_to_fit();
  after_threshold(equal);
}

void TopSelector::after_threshold(uint64_t equal) {
  const bool cut = cut_.need < equal && !values_only_ && !(zero_neutral_ && cut_.threshold == 0);
  cut_.ties = cut ? TopCut::ByRank : TopCut::All;
  stage_ = cut ? kEq : kDone;
  if (cut) eq_before_.assign(blocks_, 0);
}

// The bracket holds sample ranks (f -+ delta) s around f = m/n, delta = 4 standard errors
// of the sample's fraction of keys above its f-quantile (at least 0.1 %). The sample is
// pieces of neighbouring keys, which are alike (rows), so the standard error is measured
// between pieces (cluster sampling), not taken as the binomial sqrt(f (1 - f) / s) that
// independent keys would give (it is never taken below that). s = 40960 keys, more when
// the bracket would otherwise hold more keys than half the candidate cap, and at most a
// quarter of the tensor (else no bracket).
namespace {
constexpr double kBracketSample = 40960;
// A window needs fewer: a wider window costs only a few more keys histogrammed, and the
// sample's reads (one per piece and input, ~2 us each here) were 9% of a ties merge
// (0.5B bench: ties 1.39-1.50 s with 40960 keys, 1.21-1.28 s with 8192).
constexpr double kWindowSample = 8192;
double binomial_delta(double f, double s) { return std::max(1e-3, 4 * std::sqrt(f * (1 - f) / s)); }
}  // namespace

uint64_t TopSelector::bracket_sample_size() const {
  if (sampled_ || stage_ != kHi || small_ || values_only_ || m_ == 0 || m_ >= n_) return 0;
  const double n = static_cast<double>(n_);
  if (want_window_ && !bracket_round_) return kWindowSample <= n / 4 ? static_cast<uint64_t>(kWindowSample) : 0;
  if (!want_bracket_) return 0;
  const double f = static_cast<double>(m_) / n;
  const double cap_delta = static_cast<double>(max_candidates_) / (4 * n);
  if (cap_delta < 1e-3) return 0;
  double want = kBracketSample;
  if (binomial_delta(f, want) > cap_delta) want = 16 * f * (1 - f) / (cap_delta * cap_delta);
  want = std::max(want, 16384.0);
  if (want > n / 4) return 0;  // sampling would cost a quarter of a pass: histogram instead
  return static_cast<uint64_t>(want);
}

void TopSelector::sample(const uint32_t* keys, size_t n) {
  sample_keys_.insert(sample_keys_.end(), keys, keys + n);
  sample_pieces_.push_back(sample_keys_.size());
}

// Sample ranks are found in a histogram of the sample's high 16 key bits (bins are all
// the bracket resolves), and the between-piece error is that of the fraction of keys in
// bins above the middle bin.
// The bins [bottom, top] that hold the m-th key by the sample: beyond them the pooled
// fraction of sample keys above (below) clears f = m/n by 4 standard errors.
void TopSelector::sure_bins(const std::vector<uint32_t>& k, const std::vector<size_t>& ends,
                            const std::vector<uint64_t>& h, int* bottom_out, int* top_out) const {
  const double f = static_cast<double>(m_) / static_cast<double>(n_), ss = static_cast<double>(k.size());
  // The bin holding sample rank r from the top (0-based).
  auto bin_of_rank = [&](double r) {
    uint64_t cum = 0;
    for (int b = 32767; b >= 0; --b) {
      cum += h[static_cast<size_t>(b)] & 0xffffffffu;
      if (static_cast<double>(cum) > r) return b;
    }
    return 0;
  };
  const int mid = bin_of_rank(f * ss);
  // Per piece, counts of the bins within +-kReach of the middle one, and of the keys above
  // them: the fraction of keys above any boundary there, per piece and pooled.
  constexpr int kReach = 256;  // two binades: bf16-valued keys can sit 128 bins apart
  const int w_lo = std::max(0, mid - kReach), w_hi = std::min(32767, mid + kReach), w = w_hi - w_lo + 1;
  // A large sample's pieces are taken in at most 64 groups of neighbouring pieces (the
  // error between groups is the larger one, so this is conservative): bounded memory.
  constexpr size_t kMaxGroups = 64;
  const size_t pieces = std::min(ends.size(), kMaxGroups);
  // [w] = above w_hi; [w + 1] = below w_lo (not used).
  std::vector<uint32_t> counts(pieces * static_cast<size_t>(w + 2), 0);
  std::vector<double> len(pieces);
  size_t begin = 0;
  for (size_t p = 0; p < pieces; ++p) {
    const size_t end = ends[(p + 1) * ends.size() / pieces - 1];
    uint32_t* c = counts.data() + p * static_cast<size_t>(w + 2);
    // Branch-free (selects, not jumps: the branches mispredicted, 4% of a breadcrumbs merge).
    for (size_t i = begin; i < end; ++i) {
      const int b = static_cast<int>(k[i] >> 16);
      const int slot = b > w_hi ? w : (b < w_lo ? w + 1 : b - w_lo);
      ++c[slot];
    }
    len[p] = static_cast<double>(end - begin);
    begin = end;
  }
  // Running per-piece counts of keys above (or at and above) a boundary, walked from the
  // top of the window; a boundary is safe when the pooled fraction clears f by 4 standard
  // errors: between pieces (neighbouring keys are alike), never below the binomial one.
  std::vector<double> run(pieces), inv_len(pieces);
  for (size_t p = 0; p < pieces; ++p) {
    run[p] = counts[p * static_cast<size_t>(w + 2) + static_cast<size_t>(w)];
    inv_len[p] = 1.0 / len[p];
  }
  // Recomputed only after a bin with sample keys joined the run (empty bins change
  // nothing; the walk was 4% of a breadcrumbs merge).
  bool stale = true;
  double frac = 0, err = 0;
  auto fraction_and_error = [&] {
    if (!stale) return;
    double total = 0, sum = 0, sum2 = 0;
    for (size_t p = 0; p < pieces; ++p) {
      total += run[p];
      const double q = run[p] * inv_len[p];
      sum += q;
      sum2 += q * q;
    }
    const double np = static_cast<double>(pieces);
    frac = total / ss;
    const double var = std::max(0.0, (sum2 - sum * sum / np) / (np - 1));
    err = std::max(std::sqrt(var / np), std::sqrt(std::max(frac * (1 - frac), 1.0 / ss) / ss));
    stale = false;
  };
  int top = -1, bottom = -1;
  for (int b = w_hi; b >= w_lo; --b) {
    // run = keys above b: the bracket may end at b when that fraction is surely below f.
    if (b >= mid) {
      fraction_and_error();
      if (frac + 4 * err < f) top = b;  // the lowest such b >= mid wins
    }
    if ((h[static_cast<size_t>(b)] & 0xffffffffu) != 0) {
      stale = true;
      for (size_t p = 0; p < pieces; ++p) run[p] += counts[p * static_cast<size_t>(w + 2) + static_cast<size_t>(b - w_lo)];
    }
    // run = keys at b or above: the bracket may start at b when that is surely above f.
    if (b <= mid && bottom < 0) {
      fraction_and_error();
      if (frac - 4 * err > f) bottom = b;
    }
  }
  if (top < 0) top = 32767;  // nothing in reach is surely above the m-th key
  if (bottom < 0) bottom = 0;
  *bottom_out = bottom;
  *top_out = top;
}

void TopSelector::end_sample() {
  std::vector<uint32_t> k = std::move(sample_keys_);
  std::vector<size_t> ends = std::move(sample_pieces_);
  sample_keys_ = {};
  sample_pieces_ = {};
  const size_t s = k.size();
  if (bracket_sample_size() == 0) return;
  const bool window_round = want_window_ && !bracket_round_;
  sampled_ = true;  // unless the window's sample asks for the bracket's below
  if (s < 2 || ends.size() < 2) return;
  // Per bin: count | count of keys with low bits << 32.
  std::vector<uint64_t> h(32768, 0);
  for (uint32_t key : k) h[key >> 16] += 1 + (static_cast<uint64_t>((key & 0xffffu) != 0) << 32);
  int bottom, top;
  sure_bins(k, ends, h, &bottom, &top);
  bool use_window = window_round;
  if (window_round && want_bracket_) {
    // Both wanted: a window when the sure bins' keys are mostly their bin's value (bf16
    // task vectors: the window then decides in its pass, and scans faster than a bracket);
    // continuous keys would need a candidate pass after it: a bracket.
    uint64_t all = 0, with_low_bits = 0;
    for (int b = bottom; b <= top; ++b) {
      all += h[static_cast<size_t>(b)] & 0xffffffffu;
      with_low_bits += h[static_cast<size_t>(b)] >> 32;
    }
    use_window = 16 * with_low_bits <= all;
  }
  const int lo = std::max(0, bottom - 2), hi = std::min(32767, top + 2);
  if (use_window && hi - lo + 1 > static_cast<int>(kMaxWindow)) use_window = false;  // too spread
  if (window_round && !use_window) {
    // A bracket, if wanted, takes its own, larger sample (sample_elements() again).
    if (want_bracket_) {
      bracket_round_ = true;
      sampled_ = false;
    }
    return;
  }
  if (use_window) {
    // The first pass scans these bins (and keeps their per-chunk counts).
    win_lo_ = static_cast<uint32_t>(lo);
    win_hi_ = static_cast<uint32_t>(hi);
    win_set_ = true;
    win_hist_.assign(static_cast<size_t>(hi - lo + 1), 0);
    above_ = 0;
    stage_ = kWindow;
    return;
  }
  const double ss = static_cast<double>(s);
  // The keys of the kBracketBins bins of the bracket with the most sample keys are
  // counted, not kept (greedily, while they fit in a window of kBracketWindow bins);
  // every other key inside is a candidate. Expected candidates over the cap, or over half of the
  // keys: histogram passes instead.
  const int window = static_cast<int>(kBracketWindow);
  // Only bins whose sample keys are mostly their value qualify: a bin's keys with low
  // bits are counted too, and when the m-th key is one of them a candidate pass over the
  // bin follows (continuous keys are better kept as candidates: one pass).
  std::vector<std::pair<uint64_t, int>> busy;  // (sample keys, bin)
  for (int b = bottom; b <= top; ++b) {
    const uint64_t v = h[static_cast<size_t>(b)];
    const uint64_t c = v & 0xffffffffu, with_low_bits = v >> 32;
    if (c > 0 && 2 * with_low_bits < c) busy.emplace_back(c, b);
  }
  std::sort(busy.begin(), busy.end(), std::greater<>());
  std::vector<int> chosen;
  int first = 32767, last = 0;
  for (const auto& [c, b] : busy) {
    if (chosen.size() == kBracketBins) break;
    if (std::max(last, b) - std::min(first, b) >= window) continue;
    chosen.push_back(b);
    first = std::min(first, b);
    last = std::max(last, b);
  }
  const int eq_bin = chosen.empty() ? bottom : first;
  Bracket br;
  for (size_t j = 0; j < chosen.size(); ++j) br.slot[chosen[j] - eq_bin] = static_cast<uint32_t>(j);
  uint64_t cand = 0;
  for (int b = bottom; b <= top; ++b) {
    const uint64_t v = h[static_cast<size_t>(b)];
    const int o = b - eq_bin;
    const bool counted = o >= 0 && o < window && br.slot[o] < kBracketBins;
    cand += counted ? 0 : v & 0xffffffffu;
  }
  const double cand_share = static_cast<double>(cand) / ss;
  if (cand_share > 0.5 || cand_share * static_cast<double>(n_) > static_cast<double>(max_candidates_) / 2) return;
  br_ = br;
  br_.eq_bin = static_cast<uint32_t>(eq_bin);
  br_.hi = (static_cast<uint32_t>(top) << 16) | 0xffffu;
  br_bottom_ = bottom == 0;
  br_.lo = static_cast<uint32_t>(bottom) << 16;
  if (br_bottom_ && zero_neutral_) br_.lo = 1;  // zeros: neither counted nor collected
  br_.dense = cand_share > 0.01;
  above_ = 0;
  br_eq_.assign(blocks_ * kBracketBins, 0);
  br_frac_.assign(blocks_ * kBracketBins, 0);
  br_overflow_.store(false, std::memory_order_relaxed);
  stage_ = kBracket;
}

uint64_t TopSelector::bracket_misses() { return g_bracket_misses.load(); }

void TopSelector::start_histogram_passes() {
  // Afresh: no window counts recorded meanwhile (by a leader's histogram) may count these
  // keys twice.
  win_set_ = false;
  win_complete_ = true;
  win_counts_.clear();
  win_bytes_ = 0;
  win_hist_ = {};
  cand_.clear();
  cand_.shrink_to_fit();
  br_eq_ = {};
  br_frac_ = {};
  above_ = 0;
  br_overflow_.store(false, std::memory_order_relaxed);
  stage_ = kHi;
}

// Walks the bracket's bins from the top, each holding its equal keys (counted) and its
// candidates (keys above the bin's value V). In the bin of the m-th key: among the
// candidates -> the candidate selection of resolve_cand; else T = V and its equal keys
// are ranked by the per-block counts. Below the bracket, when it reaches the bottom and
// zeros are neutral: T = 0, and selecting every zero changes nothing. Otherwise (a miss,
// or too many candidates) the histogram passes start.
void TopSelector::resolve_bracket() {
  const uint32_t lo_bin = br_.lo >> 16, hi_bin = br_.hi >> 16;
  // Per bin of the bracket: counted keys (== its value, and the others) and candidates.
  const size_t bins = hi_bin - lo_bin + 1;
  std::vector<uint64_t> eq(bins, 0), frac(bins, 0), cand(bins, 0);
  if (!br_overflow_.load(std::memory_order_relaxed)) {
    for (uint32_t o = 0; o < kBracketWindow; ++o) {
      const uint32_t j = br_.slot[o], b = br_.eq_bin + o;
      if (j >= kBracketBins || b < lo_bin || b > hi_bin) continue;
      for (uint64_t blk = 0; blk < blocks_; ++blk) {
        eq[b - lo_bin] += br_eq_[blk * kBracketBins + j];
        frac[b - lo_bin] += br_frac_[blk * kBracketBins + j];
      }
    }
    for (uint64_t c : cand_) ++cand[((0x7fffffffu - static_cast<uint32_t>(c >> 32)) >> 16) - lo_bin];
  }
  bool found = false, below = false;
  uint32_t bin = 0;
  uint64_t above = above_;
  if (!br_overflow_.load(std::memory_order_relaxed) && above < m_) {
    for (uint32_t b = hi_bin + 1; b-- > lo_bin;) {
      const uint64_t here = eq[b - lo_bin] + frac[b - lo_bin] + cand[b - lo_bin];
      if (above + here >= m_) {
        bin = b;
        found = true;
        break;
      }
      above += here;
    }
    below = !found && br_bottom_ && zero_neutral_;
  }
  if (found) {
    const uint64_t need = m_ - above;
    const uint64_t in_bin_frac = frac[bin - lo_bin];
    if (need <= in_bin_frac) {
      // The m-th key has low bits in a counted bin: its keys were counted, not kept. One
      // candidate pass over that bin (or its low-bits histogram when too large) follows.
      hi_bin_ = bin;
      above_ = above;
      const uint64_t in_bin = in_bin_frac + eq[bin - lo_bin];
      cand_.clear();
      cand_.shrink_to_fit();
      br_eq_ = {};
      br_frac_ = {};
      if (in_bin <= max_candidates_) {
        cand_.reserve(in_bin);
        stage_ = kCand;
      } else {
        hist_.assign(65536, 0);
        stage_ = kLo;
      }
      return;
    }
    const uint64_t in_bin_cand = cand[bin - lo_bin];
    if (need <= in_bin_cand) {
      // The m-th key is a candidate (it has low bits, or its bin's values are not
      // counted, and then every key of the bin is a candidate): select among them.
      auto mid = std::partition(cand_.begin(), cand_.end(), [&](uint64_t c) {
        return ((0x7fffffffu - static_cast<uint32_t>(c >> 32)) >> 16) == bin;
      });
      cand_.erase(mid, cand_.end());
      above_ = above;
      full_keys_ = true;
      br_eq_ = {};
      br_frac_ = {};
      resolve_cand();
      return;
    }
    // T = V: the bin's keys with low bits are above it; ranks among the equal keys.
    cut_.threshold = bin << 16;
    cut_.need = need - in_bin_frac - in_bin_cand;
    const uint64_t equal = eq[bin - lo_bin];
    if (cut_.need == equal || (zero_neutral_ && cut_.threshold == 0)) {
      cut_.ties = TopCut::All;
    } else {
      cut_.ties = TopCut::ByRank;
      eq_before_.assign(blocks_, 0);
      uint64_t acc = 0;
      for (uint64_t blk = 0; blk < blocks_; ++blk) {
        eq_before_[blk] = acc;
        acc += br_eq_[blk * kBracketBins + br_.slot[bin - br_.eq_bin]];
      }
    }
  } else if (below) {
    cut_ = TopCut{0, TopCut::All, 0, 0};
  } else {
    g_bracket_misses.fetch_add(1);
    start_histogram_passes();
    return;
  }
  cand_.clear();
  cand_.shrink_to_fit();
  br_eq_ = {};
  br_frac_ = {};
  stage_ = kDone;
}

AMALGAM_SIMD_CLONES void apply_top_cut(const TopCut& cut, uint64_t first_index, const uint32_t* keys, size_t n,
                                       uint64_t* rank, float* mask) {
  const uint32_t t = cut.threshold;
  switch (cut.ties) {
    case TopCut::All:
      for (size_t i = 0; i < n; ++i) mask[i] = keys[i] >= t ? 1.0f : 0.0f;
      return;
    case TopCut::ByIndex: {
      // Elements at or before cut_index keep keys == T; the boundary splits the span.
      const uint64_t split = cut.cut_index + 1 <= first_index ? 0 : std::min<uint64_t>(n, cut.cut_index + 1 - first_index);
      for (size_t i = 0; i < split; ++i) mask[i] = keys[i] >= t ? 1.0f : 0.0f;
      for (size_t i = split; i < n; ++i) mask[i] = keys[i] > t ? 1.0f : 0.0f;
      return;
    }
    case TopCut::ByRank: {
      // Only the span holding the need-th equal key needs ranks; elsewhere every equal
      // key is in (rank < need) or out, and the test is a plain comparison.
      uint64_t r = *rank;
      const uint64_t eq = count_key_equal(keys, n, t);
      *rank = r + eq;
      if (r + eq <= cut.need) {
        for (size_t i = 0; i < n; ++i) mask[i] = keys[i] >= t ? 1.0f : 0.0f;
      } else if (r >= cut.need) {
        for (size_t i = 0; i < n; ++i) mask[i] = keys[i] > t ? 1.0f : 0.0f;
      } else {
        for (size_t i = 0; i < n; ++i) {
          bool sel = keys[i] > t;
          if (keys[i] == t) sel = r++ < cut.need;
          mask[i] = sel ? 1.0f : 0.0f;
        }
      }
      return;
    }
  }
}

}  // namespace amalgam
