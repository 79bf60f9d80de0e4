// sce (METHODS.md §5.8, FuseChat): Select the top select_topk fraction of elements by the
// variance of the task vectors across models (one mask shared by all models), Calculate
// per-model weights from mean squared masked deltas, Erase entries disagreeing with the
// majority sign. Passes: [radix select of the variance, 2-3 passes, when select_topk < 1]
// then one pass for the mean squares (f64 per block).
#include <atomic>
#include <cmath>

#include "kernels/radix_select.h"
#include "kernels/reduce.h"
#include "methods/method_util.h"

namespace amalgam {
namespace {
using namespace mdetail;

class SceMerger final : public TensorMerger {
 public:
  SceMerger(const TensorJob& job, double topk) : job_(job), topk_(topk) {
    base_ = static_cast<size_t>(job.base);
    xs_ = non_base_inputs(job);
    n_ = job.numel();
    block_ = reduction_block(1);
    blocks_ = block_count(n_, block_);
    mode_ = topk >= 1.0 ? kAll : (topk <= 0.0 || n_ < 2 ? kNone : kSelect);
    if (mode_ == kSelect) sel_ = std::make_unique<TopSelector>(n_, 1, blocks_, false, false);
    sq_.assign(blocks_ * xs_.size(), 0.0);
    q_.assign(xs_.size(), 0.0f);
  }

  int stat_passes() const override {
    return passes_done_ + (selecting() ? sel_->passes_left() : 0) + (q_done_ ? 0 : 1);
  }

  void accumulate(int, const Chunk& c) override {
    if (q_done_) return;  // a pass announced as an upper bound but not needed
    const size_t M = xs_.size();
    std::vector<float> d(M * kTile), mask(kTile);
    std::vector<uint32_t> keys(kTile);
    TopSelector::Local local;
    uint64_t nonzero = 0;
    // Tie ranks run on through the chunk's blocks (equal_before is exact at a chunk start).
    uint64_t rank = sel_ ? sel_->equal_before(c.begin / block_) : 0;
    for_each_block(c, block_, [&](uint64_t blk, uint64_t first, uint64_t count) {
      for_each_tile(first - c.begin, count, [&](uint64_t off, uint64_t n) {
        load(c, off, n, d.data());
        if (selecting()) {
          variance_keys(d.data(), n, keys.data());
          if (passes_done_ == 0)
            for (size_t i = 0; i < n; ++i) nonzero += keys[i] != 0;
          sel_->observe(local, blk, c.begin + off, keys.data(), n);
          return;
        }
        apply_mask(d.data(), c.begin + off, n, &rank, keys.data(), mask.data());
        for (size_t k = 0; k < M; ++k) sq_[blk * M + k] += sum_sq_f64(d.data() + k * kTile, n);
      });
    });
    if (selecting()) {
      sel_->commit(local);
      nonzero_ += nonzero;
    }
  }

  void finish_pass(int) override {
    if (q_done_) return;
    if (selecting()) {
      if (passes_done_ == 0) {
        // k = floor(nz * select_topk) of the non-zero variances (§5.8).
        const uint64_t k = static_cast<uint64_t>(std::floor(static_cast<double>(nonzero_.load()) * topk_));
        sel_->set_target(k);
      }
      sel_->finish_pass();
      ++passes_done_;
      return;
    }
    const size_t M = xs_.size();
    std::vector<double> q(M, 0.0);
    for (uint64_t b = 0; b < blocks_; ++b)
      for (size_t k = 0; k < M; ++k) q[k] += sq_[b * M + k];
    double Q = 0;
    for (size_t k = 0; k < M; ++k) Q += (q[k] /= static_cast<double>(n_));
    for (size_t k = 0; k < M; ++k)
      q_[k] = static_cast<float>(std::fabs(Q) < 1e-6 ? 1.0 / M : q[k] / Q);  // absolute 1e-6 (QUIRK kept, §8.9)
    q_done_ = true;
    ++passes_done_;
  }

  void merge(const Chunk& c, float* out) const override {
    const size_t M = xs_.size();
    std::vector<float> d(M * kTile), mask(kTile), S(kTile), num(kTile), den(kTile);
    std::vector<uint32_t> keys(kTile);
    // Tie ranks run on through the chunk's blocks (equal_before is exact at a chunk start).
    uint64_t rank = sel_ ? sel_->equal_before(c.begin / block_) : 0;
    for_each_block(c, block_, [&](uint64_t blk, uint64_t first, uint64_t count) {
      for_each_tile(first - c.begin, count, [&](uint64_t off, uint64_t n) {
        load(c, off, n, d.data());
        apply_mask(d.data(), c.begin + off, n, &rank, keys.data(), mask.data());
        std::fill(S.begin(), S.begin() + n, 0.0f);
        for (size_t k = 0; k < M; ++k)
          for (size_t i = 0; i < n; ++i) S[i] += d[k * kTile + i];
        for (size_t i = 0; i < n; ++i) S[i] = S[i] >= 0.0f ? 1.0f : -1.0f;  // elected sign
        std::fill(num.begin(), num.begin() + n, 0.0f);
        std::fill(den.begin(), den.begin() + n, 0.0f);
        for (size_t k = 0; k < M; ++k) {
          const float q = q_[k];
          const float* e = d.data() + k * kTile;
          for (size_t i = 0; i < n; ++i) {  // selects of computed values: vectorizes
            const float ei = e[i];
            const float t = ei * S[i];
            const float qe = q * ei;
            const float dn = t > 0.0f ? qe : 0.0f;
            const float dd = t > 0.0f ? q : 0.0f;
            num[i] = num[i] + dn;
            den[i] = den[i] + dd;
          }
        }
        const float* b = c.inputs[base_] + off;
        float* o = out + off;
        for (size_t i = 0; i < n; ++i) o[i] = b[i] + num[i] / std::max(den[i], 1e-6f);
      });
    });
  }

 private:
  enum Mode { kAll, kNone, kSelect };
  bool selecting() const { return mode_ == kSelect && sel_->stage() != TopSelector::kDone; }

  void load(const Chunk& c, uint64_t off, uint64_t n, float* d) const {
    const float* b = c.inputs[base_] + off;
    for (size_t k = 0; k < xs_.size(); ++k) {
      const float* x = c.inputs[xs_[k]] + off;
      for (size_t i = 0; i < n; ++i) d[k * kTile + i] = x[i] - b[i];
    }
  }
  // Population variance across models of each element, as order-preserving keys.
  void variance_keys(const float* d, uint64_t n, uint32_t* keys) const {
    const size_t M = xs_.size();
    const float inv = 1.0f / static_cast<float>(M);
    for (size_t i = 0; i < n; ++i) {
      float mu = 0;
      for (size_t k = 0; k < M; ++k) mu += d[k * kTile + i];
      mu *= inv;
      float v = 0;
      for (size_t k = 0; k < M; ++k) {
        float e = d[k * kTile + i] - mu;
        v += e * e;
      }
      keys[i] = abs_key(v * inv);
    }
  }
  // Multiplies every model's deltas by the shared selection mask.
  void apply_mask(float* d, uint64_t first, uint64_t n, uint64_t* rank, uint32_t* keys, float* mask) const {
    if (mode_ == kAll) return;
    if (mode_ == kNone) {
      std::fill(mask, mask + n, 0.0f);
    } else {
      variance_keys(d, n, keys);
      apply_top_cut(sel_->cut(), first, keys, n, rank, mask);
    }
    for (size_t k = 0; k < xs_.size(); ++k)
      for (size_t i = 0; i < n; ++i) d[k * kTile + i] *= mask[i];
  }

  const TensorJob& job_;
  double topk_;
  size_t base_ = 0;
  std::vector<size_t> xs_;
  uint64_t n_ = 0, block_ = 65536, blocks_ = 0;
  Mode mode_ = kAll;
  std::unique_ptr<TopSelector> sel_;
  std::atomic<uint64_t> nonzero_{0};
  std::vector<double> sq_;
  std::vector<float> q_;
  bool q_done_ = false;
  int passes_done_ = 0;
};

std::unique_ptr<TensorMerger> create(const TensorJob& job, std::string_view name) {
  require_base(job, name);
  if (non_base_inputs(job).empty()) return make_copy_merger(static_cast<size_t>(job.base));
  return std::make_unique<SceMerger>(job, job.param_or("select_topk", 1.0));
}
}  // namespace

const MergeMethod& method_sce() {
  static const SimpleMethod m("sce", {global_param("select_topk", 1.0), global_param("int8_mask", 0.0)},
                              BaseRole::Required, &create);
  return m;
}

}  // namespace amalgam
