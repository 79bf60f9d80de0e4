// ram and ramplus_tl (METHODS.md §5.12, Reinforced Agent Merging): deltas with
// |delta| > epsilon are active; an element changed by one model takes that delta whole
// (times lambda_i in ramplus_tl), one changed by several takes their mean.
// ramplus_tl needs one statistics pass: per model, the counts of its shared and unique
// active elements (integers, so the merge order of chunk counts does not matter).
#include <algorithm>
#include <atomic>
#include <cmath>

#include "methods/method_util.h"

namespace amalgam {
namespace {
using namespace mdetail;

class RamMerger final : public TensorMerger {
 public:
  RamMerger(const TensorJob& job, bool plus) : plus_(plus) {
    base_ = static_cast<size_t>(job.base);
    xs_ = non_base_inputs(job);
    eps_ = static_cast<float>(job.param_or("epsilon", 1e-5));
    r_ = job.param_or("r", 0.1);
    alpha_ = job.param_or("alpha", 0.2);
    lambda_.assign(xs_.size(), 1.0f);
    shared_ = std::vector<std::atomic<uint64_t>>(xs_.size());
    unique_ = std::vector<std::atomic<uint64_t>>(xs_.size());
  }
  int stat_passes() const override { return plus_ ? 1 : 0; }

  void accumulate(int, const Chunk& c) override {
    const size_t M = xs_.size();
    std::vector<uint64_t> counts(2 * M + 1, 0);  // shared then unique, per model
    uint64_t* sh = counts.data();
    uint64_t* un = counts.data() + M;
    std::vector<uint8_t> act(M * kTile);
    std::vector<uint32_t> cnt(kTile);
    for_each_tile(0, c.count, [&](uint64_t off, uint64_t n) {
      active(c, off, n, act.data(), cnt.data());
      for (size_t k = 0; k < M; ++k)
        for (size_t i = 0; i < n; ++i) {
          bool a = act[k * kTile + i];
          sh[k] += a && cnt[i] > 1;
          un[k] += a && cnt[i] == 1;
        }
    });
    for (size_t k = 0; k < M; ++k) {
      shared_[k] += sh[k];
      unique_[k] += un[k];
    }
  }

  void finish_pass(int) override {
    for (size_t k = 0; k < xs_.size(); ++k) {
      double rho = static_cast<double>(shared_[k]) / std::max<double>(static_cast<double>(unique_[k]), eps_);
      lambda_[k] = static_cast<float>(1.0 + r_ * std::clamp(rho, 0.0, alpha_));
    }
  }

  void merge(const Chunk& c, float* out) const override {
    const size_t M = xs_.size();
    std::vector<uint8_t> act(M * kTile);
    std::vector<uint32_t> cnt(kTile);
    std::vector<float> sum(kTile), uni(kTile);
    for_each_tile(0, c.count, [&](uint64_t off, uint64_t n) {
      active(c, off, n, act.data(), cnt.data());
      std::fill(sum.begin(), sum.begin() + n, 0.0f);
      std::fill(uni.begin(), uni.begin() + n, 0.0f);
      const float* b = c.inputs[base_] + off;
      for (size_t k = 0; k < M; ++k) {
        const float* x = c.inputs[xs_[k]] + off;
        const uint8_t* a = act.data() + k * kTile;
        const float l = lambda_[k];
        for (size_t i = 0; i < n; ++i) {
          float d = a[i] ? x[i] - b[i] : 0.0f;
          sum[i] += d;
          uni[i] += d * l;
        }
      }
      float* o = out + off;
      for (size_t i = 0; i < n; ++i) {
        float d = cnt[i] == 1 ? uni[i] : (cnt[i] > 1 ? sum[i] / static_cast<float>(cnt[i]) : 0.0f);
        o[i] = b[i] + d;
      }
    });
  }

 private:
  void active(const Chunk& c, uint64_t off, uint64_t n, uint8_t* act, uint32_t* cnt) const {
    std::fill(cnt, cnt + n, 0u);
    const float* b = c.inputs[base_] + off;
    for (size_t k = 0; k < xs_.size(); ++k) {
      const float* x = c.inputs[xs_[k]] + off;
      uint8_t* a = act + k * kTile;
      for (size_t i = 0; i < n; ++i) {
        a[i] = std::fabs(x[i] - b[i]) > eps_;
        cnt[i] += a[i];
      }
    }
  }

  bool plus_;
  size_t base_ = 0;
  std::vector<size_t> xs_;
  float eps_ = 1e-5f;
  double r_ = 0.1, alpha_ = 0.2;
  std::vector<float> lambda_;
  std::vector<std::atomic<uint64_t>> shared_, unique_;
};

std::unique_ptr<TensorMerger> create_ram(const TensorJob& job, bool plus, std::string_view name) {
  require_base(job, name);
  if (non_base_inputs(job).empty()) return make_copy_merger(static_cast<size_t>(job.base));
  return std::make_unique<RamMerger>(job, plus);
}
std::unique_ptr<TensorMerger> create_plain(const TensorJob& job, std::string_view name) {
  return create_ram(job, false, name);
}
std::unique_ptr<TensorMerger> create_plus(const TensorJob& job, std::string_view name) {
  return create_ram(job, true, name);
}
}  // namespace

const MergeMethod& method_ram() {
  static const SimpleMethod m("ram", {global_param("epsilon", 1e-5)}, BaseRole::Required, &create_plain);
  return m;
}

const MergeMethod& method_ramplus_tl() {
  static const SimpleMethod m("ramplus_tl",
                              {global_param("epsilon", 1e-5), global_param("r", 0.1), global_param("alpha", 0.2)},
                              BaseRole::Required, &create_plus);
  return m;
}

}  // namespace amalgam
