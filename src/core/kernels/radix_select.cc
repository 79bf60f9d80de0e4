// TopSelector: the radix-select state machine of radix_select.h.
#include "kernels/radix_select.h"

#include <algorithm>

#include "kernels/simd.h"

namespace amalgam {

AMALGAM_SIMD_CLONES void key_histogram_hi(const uint32_t* keys, size_t n, uint32_t* hist, uint32_t* low_or) {
  uint32_t o = 0;
  for (size_t i = 0; i < n; ++i) o |= keys[i];
  for (size_t i = 0; i < n; ++i) ++hist[keys[i] >> 16];
  *low_or |= o & 0xffffu;
}

void key_histogram_lo(const uint32_t* keys, size_t n, uint32_t hi, uint32_t* hist) {
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

TopSelector::TopSelector(uint64_t n, uint64_t m, uint64_t blocks, bool zero_neutral, bool values_only)
    : n_(n), m_(std::min(m, n)), zero_neutral_(zero_neutral), values_only_(values_only), blocks_(blocks) {
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
  if (hist_.empty()) hist_.assign(32768, 0);
}

int TopSelector::passes_left() const {
  switch (stage_) {
    case kHi: return values_only_ ? 2 : 3;
    case kCand: return 1;
    case kLo: return values_only_ ? 1 : 2;
    case kEq: return 1;
    case kDone: return 0;
  }
  return 0;
}

void TopSelector::observe(Local& local, uint64_t block, uint64_t first_index, const uint32_t* keys, size_t n) {
  switch (stage_) {
    case kHi:
      if (local.hist.empty()) local.hist.assign(32768, 0);
      key_histogram_hi(keys, n, local.hist.data(), &local.low_or);
      break;
    case kCand: {
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

void TopSelector::commit(Local& local) {
  if (local.hist.empty() && local.cand.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < local.hist.size(); ++i) hist_[i] += local.hist[i];
  low_or_ |= local.low_or;
  cand_.insert(cand_.end(), local.cand.begin(), local.cand.end());
  local.hist.clear();
  local.cand.clear();
  local.low_or = 0;
}

void TopSelector::share_histogram_from(const TopSelector& other) {
  hist_ = other.hist_;
  low_or_ = other.low_or_;
}

void TopSelector::finish_pass() {
  switch (stage_) {
    case kHi: resolve_hi(); break;
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
  // Walk bins from the largest key down until m keys are covered.
  uint64_t above = 0;
  uint32_t bin = 0;
  for (int b = 32767; b >= 0; --b) {
    if (above + hist_[b] >= m_) {
      bin = static_cast<uint32_t>(b);
      break;
    }
    above += hist_[b];
  }
  hi_bin_ = bin;
  above_ = above;
  const uint64_t in_bin = hist_[bin];
  const uint64_t need = m_ - above;
  hist_.clear();
  hist_.shrink_to_fit();
  if (low_or_ == 0) {
    // Every key has zero low bits: the bin is the exact threshold.
    cut_.threshold = bin << 16;
    cut_.need = need;
    if (need == in_bin || values_only_ || (zero_neutral_ && cut_.threshold == 0)) {
      cut_.ties = TopCut::All;
      stage_ = kDone;
      return;
    }
  }
  if (in_bin <= max_candidates_) {
    cand_.reserve(in_bin);
    stage_ = kCand;
  } else if (low_or_ == 0) {
    after_threshold(in_bin);
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
  const uint32_t lo = 0xffffu - static_cast<uint32_t>(last >> 48);
  cut_.threshold = (hi_bin_ << 16) | lo;
  cut_.need = need;
  cut_.cut_index = last & ((uint64_t{1} << 48) - 1);
  // All keys == T selected? Then the index test is unnecessary.
  const bool all = need == cand_.size() || (cand_[need] >> 48) != (last >> 48);
  cut_.ties = (all || values_only_ || (zero_neutral_ && cut_.threshold == 0)) ? TopCut::All : TopCut::ByIndex;
  cand_.clear();
  cand_.shrink_to_fit();
  stage_ = kDone;
}

void TopSelector::resolve_lo() {
  uint64_t above = above_;
  uint32_t lo = 0;
  for (int b = 65535; b >= 0; --b) {
    if (above + hist_[b] >= m_) {
      lo = static_cast<uint32_t>(b);
      break;
    }
    above += hist_[b];
  }
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
      uint64_t r = *rank;
      for (size_t i = 0; i < n; ++i) {
        bool sel = keys[i] > t;
        if (keys[i] == t) sel = r++ < cut.need;
        mask[i] = sel ? 1.0f : 0.0f;
      }
      *rank = r;
      return;
    }
  }
}

}  // namespace amalgam
