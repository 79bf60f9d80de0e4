// BlockGram: see gram.h.
#include "methods/gram.h"

#include <algorithm>

#include "kernels/reduce.h"
#include "methods/method_util.h"

namespace amalgam::mdetail {

BlockGram::BlockGram(std::vector<size_t> inputs, int sub, uint64_t numel, uint64_t block,
                     Segments seg, uint64_t seg_len)
    : inputs_(std::move(inputs)), sub_(sub), numel_(numel), block_(block),
      seg_len_(std::max<uint64_t>(seg_len, 1)), seg_(seg) {
  k_ = inputs_.size();
  p_ = k_ * (k_ + 1) / 2;
  const uint64_t blocks = block_count(numel_, block_);
  switch (seg_) {
    case Segments::Whole:
      n_seg_ = 1;
      partial_.assign(blocks * p_, 0.0);
      break;
    case Segments::Rows:
      n_seg_ = numel_ / seg_len_;
      result_.assign(n_seg_ * p_, 0.0);
      break;
    case Segments::Columns:
      n_seg_ = seg_len_;
      partial_.assign(blocks * n_seg_ * p_, 0.0);
      break;
  }
}

size_t BlockGram::pair(size_t i, size_t j) const {
  if (i > j) std::swap(i, j);
  return i * k_ - i * (i + 1) / 2 + j;
}

double BlockGram::at(uint64_t s, size_t i, size_t j) const { return result_[s * p_ + pair(i, j)]; }

void BlockGram::accumulate(const Chunk& chunk) {
  const uint64_t unit = seg_ == Segments::Rows ? seg_len_ : kTile;
  std::vector<float> v(k_ * unit);
  for_each_block(chunk, block_, [&](uint64_t blk, uint64_t first, uint64_t count) {
    std::vector<double> acc(seg_ == Segments::Whole ? p_ : 0, 0.0);
    for (uint64_t t = 0; t < count; t += unit) {
      const size_t n = std::min<uint64_t>(unit, count - t);
      const uint64_t off = first - chunk.begin + t;
      for (size_t a = 0; a < k_; ++a) {
        const float* x = chunk.inputs[inputs_[a]] + off;
        float* d = v.data() + a * unit;
        if (sub_ >= 0) {
          const float* b = chunk.inputs[sub_] + off;
          for (size_t i = 0; i < n; ++i) d[i] = x[i] - b[i];
        } else {
          std::copy(x, x + n, d);
        }
      }
      if (seg_ == Segments::Columns) {
        double* part = partial_.data() + blk * n_seg_ * p_;
        for (size_t i = 0; i < n; ++i) {
          double* pc = part + ((first + t + i) % seg_len_) * p_;
          for (size_t a = 0; a < k_; ++a)
            for (size_t b = a; b < k_; ++b)
              pc[pair(a, b)] += static_cast<double>(v[a * unit + i]) * v[b * unit + i];
        }
        continue;
      }
      double* dst = seg_ == Segments::Rows ? result_.data() + ((first + t) / seg_len_) * p_ : acc.data();
      for (size_t a = 0; a < k_; ++a)
        for (size_t b = a; b < k_; ++b) dst[pair(a, b)] += dot_f64(v.data() + a * unit, v.data() + b * unit, n);
    }
    if (seg_ == Segments::Whole) std::copy(acc.begin(), acc.end(), partial_.begin() + blk * p_);
  });
}

void BlockGram::finish() {
  if (seg_ == Segments::Rows) return;
  const uint64_t blocks = block_count(numel_, block_);
  const uint64_t stride = n_seg_ * p_;
  result_.assign(stride, 0.0);
  for (uint64_t b = 0; b < blocks; ++b)
    for (uint64_t q = 0; q < stride; ++q) result_[q] += partial_[b * stride + q];
  partial_.clear();
  partial_.shrink_to_fit();
}

}  // namespace amalgam::mdetail

namespace amalgam::mdetail {

GramMerger::GramMerger(const TensorJob& job, std::string_view method, std::vector<size_t> inputs, int sub,
                       BlockGram::Segments seg, uint64_t seg_len)
    : job_(job), method_(method), inputs_(inputs), sub_(sub), seg_(seg), seg_len_(std::max<uint64_t>(seg_len, 1)),
      gram_(inputs, sub, job.numel(),
            reduction_block(seg == BlockGram::Segments::Rows ? std::max<uint64_t>(seg_len, 1) : 1), seg,
            seg_len) {}

uint64_t GramMerger::row_length() const { return seg_ == BlockGram::Segments::Rows ? seg_len_ : 1; }

void GramMerger::finish_pass(int) {
  gram_.finish();
  coef_.assign(gram_.segments() * inputs_.size(), 0.0);
  solve();
  coef_f_.resize(coef_.size());
  for (size_t i = 0; i < coef_.size(); ++i) {
    require_finite(job_, method_, coef_[i], "an interpolation coefficient");
    coef_f_[i] = static_cast<float>(coef_[i]);
  }
}

void GramMerger::merge(const Chunk& c, float* out) const {
  const size_t K = inputs_.size();
  const float* b = sub_ >= 0 ? c.inputs[sub_] : nullptr;
  auto combine = [&](uint64_t off, uint64_t n, const float* cf) {
    // Terms with a zero coefficient are skipped: endpoints come back bit-exact.
    bool first = true;
    float* o = out + off;
    for (size_t k = 0; k < K; ++k) {
      const float w = cf[k];
      if (w == 0.0f) continue;
      const float* x = c.inputs[inputs_[k]] + off;
      if (b) {
        const float* bb = b + off;
        if (first)
          for (uint64_t i = 0; i < n; ++i) o[i] = w * (x[i] - bb[i]);
        else
          for (uint64_t i = 0; i < n; ++i) o[i] += w * (x[i] - bb[i]);
      } else {
        if (first)
          for (uint64_t i = 0; i < n; ++i) o[i] = w * x[i];
        else
          for (uint64_t i = 0; i < n; ++i) o[i] += w * x[i];
      }
      first = false;
    }
    if (b) {
      const float* bb = b + off;
      if (first)
        std::copy(bb, bb + n, o);
      else
        for (uint64_t i = 0; i < n; ++i) o[i] += bb[i];
    } else if (first) {
      std::fill(o, o + n, 0.0f);
    }
  };
  switch (seg_) {
    case BlockGram::Segments::Whole:
      combine(0, c.count, coef_f_.data());
      break;
    case BlockGram::Segments::Rows:
      for (uint64_t r = 0; r < c.count; r += seg_len_)
        combine(r, seg_len_, coef_f_.data() + ((c.begin + r) / seg_len_) * K);
      break;
    case BlockGram::Segments::Columns:
      for (uint64_t i = 0; i < c.count; ++i) {
        const float* cf = coef_f_.data() + ((c.begin + i) % seg_len_) * K;
        float acc = 0.0f;
        for (size_t k = 0; k < K; ++k)
          acc += cf[k] * (b ? c.inputs[inputs_[k]][i] - b[i] : c.inputs[inputs_[k]][i]);
        out[i] = b ? b[i] + acc : acc;
      }
      break;
  }
}

}  // namespace amalgam::mdetail
