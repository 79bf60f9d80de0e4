// TopSelector: the radix-select state machine of radix_select.h.
#include "kernels/radix_select.h"

#include <algorithm>

namespace amalgam {

void key_histogram_hi(const uint32_t* keys, size_t n, uint32_t* hist, uint32_t* low_or) {
  uint32_t o = 0;
  for (size_t i = 0; i < n; ++i) {
    ++hist[keys[i] >> 16];
    o |= keys[i];
  }
  *low_or |= o & 0xffffu;
}

void key_histogram_lo(const uint32_t* keys, size_t n, uint32_t hi, uint32_t* hist) {
  for (size_t i = 0; i < n; ++i)
    if ((keys[i] >> 16) == hi) ++hist[keys[i] & 0xffffu];
}

uint64_t count_key_equal(const uint32_t* keys, size_t n, uint32_t key) {
  uint64_t c = 0;
  for (size_t i = 0; i < n; ++i) c += keys[i] == key;
  return c;
}

TopSelector::TopSelector(uint64_t n, uint64_t m, uint64_t blocks, bool zero_neutral, bool values_only)
    : n_(n), m_(std::min(m, n)), zero_neutral_(zero_neutral), values_only_(values_only), blocks_(blocks) {
  init(blocks);
}

void TopSelector::set_target(uint64_t m) {
  m_ = std::min(m, n_);
  cut_ = TopCut{};
  stage_ = kHi;
  if (m_ == 0 || m_ == n_) {
    init(blocks_);
  } else {
    eq_before_.assign(blocks_, 0);
  }
}

void TopSelector::init(uint64_t blocks) {
  if (m_ == 0) {
    cut_ = TopCut{};  // threshold above every key
    stage_ = kDone;
    return;
  }
  if (m_ == n_ && !values_only_) {
    cut_ = TopCut{0, n_, false};  // every key >= 0
    stage_ = kDone;
    return;
  }
  if (hist_.empty()) hist_.assign(32768, 0);
  eq_before_.assign(blocks, 0);
}

int TopSelector::passes_left() const {
  switch (stage_) {
    case kHi: return values_only_ ? 2 : 3;
    case kLo: return values_only_ ? 1 : 2;
    case kEq: return 1;
    case kDone: return 0;
  }
  return 0;
}

void TopSelector::observe(Local& local, uint64_t block, const uint32_t* keys, size_t n) {
  switch (stage_) {
    case kHi:
      if (local.hist.empty()) local.hist.assign(32768, 0);
      key_histogram_hi(keys, n, local.hist.data(), &local.low_or);
      break;
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
  if (local.hist.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < local.hist.size(); ++i) hist_[i] += local.hist[i];
  low_or_ |= local.low_or;
  local.hist.clear();
  local.low_or = 0;
}

void TopSelector::finish_pass() {
  switch (stage_) {
    case kHi: resolve_hi(); break;
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
  uint32_t bin = 32767;
  for (int b = 32767; b >= 0; --b) {
    if (above + hist_[b] >= m_) {
      bin = static_cast<uint32_t>(b);
      break;
    }
    above += hist_[b];
  }
  hi_bin_ = bin;
  above_ = above;
  if (low_or_ == 0) {
    // Every key has zero low bits: the bin is the exact threshold.
    cut_.threshold = bin << 16;
    uint64_t equal = hist_[bin];
    cut_.need = m_ - above;
    cut_.cut_ties = cut_.need < equal;
    after_threshold();
    hist_.clear();
    return;
  }
  hist_.assign(65536, 0);
  stage_ = kLo;
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
  cut_.cut_ties = cut_.need < hist_[lo];
  hist_.clear();
  hist_.shrink_to_fit();
  after_threshold();
}

void TopSelector::after_threshold() {
  if (values_only_ || (zero_neutral_ && cut_.threshold == 0)) cut_.cut_ties = false;
  stage_ = cut_.cut_ties ? kEq : kDone;
  if (!cut_.cut_ties) eq_before_.clear();
}

void apply_top_cut(const TopCut& cut, const uint32_t* keys, size_t n, uint64_t* rank, float* mask) {
  const uint32_t t = cut.threshold;
  if (!cut.cut_ties) {
    for (size_t i = 0; i < n; ++i) mask[i] = keys[i] >= t ? 1.0f : 0.0f;
    return;
  }
  uint64_t r = *rank;
  for (size_t i = 0; i < n; ++i) {
    bool sel = keys[i] > t;
    if (keys[i] == t) sel = r++ < cut.need;
    mask[i] = sel ? 1.0f : 0.0f;
  }
  *rank = r;
}

}  // namespace amalgam
