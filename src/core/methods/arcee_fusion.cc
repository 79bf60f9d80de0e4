// arcee_fusion (METHODS.md §5.10): importance I = |X - B| * KL(softmax(X) || softmax(B))
// per last-axis row; elements with I >= Q(0.5) + 1.5 (Q(0.75) - Q(0.25)) take X's value.
// Quantiles are exact over all elements (§8.7), found by radix select (2 passes; the
// first also computes each row's KL, kept as one float per row).
#include <cmath>

#include "kernels/radix_select.h"
#include "methods/method_util.h"

namespace amalgam {
namespace {
using namespace mdetail;

class ArceeFusionMerger final : public TensorMerger {
 public:
  ArceeFusionMerger(const TensorJob& job, size_t base, size_t other) : base_(base), other_(other) {
    n_ = job.numel();
    row_ = job.shape.size() >= 2 ? static_cast<uint64_t>(job.shape.back()) : n_;
    row_ = std::max<uint64_t>(row_, 1);
    block_ = reduction_block(row_);
    kl_.assign(n_ / row_, 0.0f);
    // Ascending index floor(q (M - 1)) is the (M - index)-th largest.
    const double qs[3] = {0.25, 0.5, 0.75};
    for (int i = 0; i < 3; ++i) {
      uint64_t idx = static_cast<uint64_t>(std::floor(qs[i] * static_cast<double>(n_ - 1)));
      sel_[i] = std::make_unique<TopSelector>(n_, n_ - idx, block_count(n_, block_), true, true);
    }
  }
  uint64_t row_length() const override { return row_; }
  int stat_passes() const override {
    int left = 0;
    for (auto& s : sel_) left = std::max(left, s->passes_left());
    return passes_done_ + std::max(left, kl_done_ ? 0 : 1);
  }

  void accumulate(int, const Chunk& c) override {
    std::vector<float> imp(row_);
    std::vector<uint32_t> keys(row_);
    TopSelector::Local local[3];
    for (uint64_t r = 0; r < c.count; r += row_) {
      const uint64_t row = (c.begin + r) / row_;
      if (!kl_done_) kl_[row] = row_kl(c.inputs[other_] + r, c.inputs[base_] + r);
      importance(c, r, kl_[row], imp.data());
      for (uint64_t i = 0; i < row_; ++i) keys[i] = abs_key(imp[i]);
      const uint64_t blk = (c.begin + r) / block_;
      for (int s = 0; s < 3; ++s) sel_[s]->observe(local[s], blk, c.begin + r, keys.data(), row_);
    }
    for (int s = 0; s < 3; ++s) sel_[s]->commit(local[s]);
  }

  void finish_pass(int) override {
    kl_done_ = true;
    ++passes_done_;
    for (auto& s : sel_) s->finish_pass();
    bool done = true;
    for (auto& s : sel_) done &= s->stage() == TopSelector::kDone;
    if (done) {
      float q[3];
      for (int i = 0; i < 3; ++i) {
        uint32_t t = sel_[i]->threshold();
        __builtin_memcpy(&q[i], &t, 4);
      }
      thr_ = q[1] + 1.5f * (q[2] - q[0]);
    }
  }

  void merge(const Chunk& c, float* out) const override {
    std::vector<float> imp(row_);
    for (uint64_t r = 0; r < c.count; r += row_) {
      const uint64_t row = (c.begin + r) / row_;
      importance(c, r, kl_[row], imp.data());
      const float* b = c.inputs[base_] + r;
      const float* x = c.inputs[other_] + r;
      for (uint64_t i = 0; i < row_; ++i) out[r + i] = imp[i] >= thr_ ? x[i] : b[i];
    }
  }

 private:
  // KL(p || q), p = softmax(x) + 1e-8, q = softmax(b) + 1e-8, in f64; clamped at 0 so that
  // rounding never makes importances negative.
  double softmax_lse(const float* v) const {
    double mx = -INFINITY;
    for (uint64_t i = 0; i < row_; ++i) mx = std::max(mx, static_cast<double>(v[i]));
    double s = 0;
    for (uint64_t i = 0; i < row_; ++i) s += std::exp(v[i] - mx);
    return mx + std::log(s);
  }
  float row_kl(const float* x, const float* b) const {
    const double lx = softmax_lse(x), lb = softmax_lse(b);
    double kl = 0;
    for (uint64_t i = 0; i < row_; ++i) {
      double p = std::exp(x[i] - lx) + 1e-8, q = std::exp(b[i] - lb) + 1e-8;
      kl += p * std::log(p / q);
    }
    return static_cast<float>(std::max(kl, 0.0));
  }
  void importance(const Chunk& c, uint64_t r, float k, float* imp) const {
    const float* b = c.inputs[base_] + r;
    const float* x = c.inputs[other_] + r;
    for (uint64_t i = 0; i < row_; ++i) imp[i] = std::fabs(x[i] - b[i]) * k;
  }

  size_t base_, other_;
  uint64_t n_ = 0, row_ = 1, block_ = 65536;
  std::vector<float> kl_;
  bool kl_done_ = false;
  int passes_done_ = 0;
  std::unique_ptr<TopSelector> sel_[3];
  float thr_ = 0;
};

std::unique_ptr<TensorMerger> create(const TensorJob& job, std::string_view name) {
  if (job.n_inputs() == 1) return make_copy_merger(0);
  require_base(job, name);
  auto xs = non_base_inputs(job);
  if (xs.size() != 1) job_error(job, name, fmt::format("expects exactly one model besides the base, got {}", xs.size()));
  return std::make_unique<ArceeFusionMerger>(job, static_cast<size_t>(job.base), xs[0]);
}
}  // namespace

const MergeMethod& method_arcee_fusion() {
  static const SimpleMethod m("arcee_fusion", {}, BaseRole::Required, &create);
  return m;
}

}  // namespace amalgam
