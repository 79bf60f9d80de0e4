// Gram matrices of a few vectors built from the inputs (v_k = X_k or X_k - B), gathered in
// one statistics pass: per whole tensor, per row (last axis) or per column (axis 0).
// slerp, nuslerp, multislerp, karcher and model_stock only need these dot products:
// their results stay in the span of the inputs (§5.3-5.7). Internal to methods/.
// Determinism: whole-tensor and column sums keep one f64 partial per reduction block and
// add them in block order; a row lies inside one block and is summed in index order.
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

#include "methods/method.h"

namespace amalgam::mdetail {

class BlockGram {
 public:
  enum class Segments { Whole, Rows, Columns };
  // inputs: the vectors' input indices; sub: input subtracted from each (-1: none).
  // Rows: segments of `seg_len` consecutive elements; Columns: element i belongs to
  // column i % seg_len.
  BlockGram(std::vector<size_t> inputs, int sub, uint64_t numel, uint64_t block, Segments seg,
            uint64_t seg_len);
  void accumulate(const Chunk& chunk);
  void finish();
  size_t size() const { return k_; }
  uint64_t segments() const { return n_seg_; }
  // <v_i, v_j> of segment s (after finish()).
  double at(uint64_t s, size_t i, size_t j) const;

 private:
  size_t pair(size_t i, size_t j) const;
  std::vector<size_t> inputs_;
  int sub_;
  uint64_t numel_, block_, seg_len_, n_seg_;
  Segments seg_;
  size_t k_, p_;
  std::vector<double> partial_;  // per block (x columns) x pairs; then per segment result
  std::vector<double> result_;
};

// A merger whose output is sub + sum_k c_k (X_k - sub) per segment (sub = 0 when absent),
// with the coefficients c solved from the Gram matrix after one statistics pass.
class GramMerger : public TensorMerger {
 public:
  GramMerger(const TensorJob& job, std::string_view method, std::vector<size_t> inputs, int sub,
             BlockGram::Segments seg, uint64_t seg_len);
  int stat_passes() const override { return 1; }
  uint64_t row_length() const override;
  void accumulate(int, const Chunk& chunk) override { gram_.accumulate(chunk); }
  void finish_pass(int) override;
  void merge(const Chunk& chunk, float* out) const override;

 protected:
  // Fill coef_[s * size() + k] for every segment s; may throw Error(Recipe).
  virtual void solve() = 0;
  const BlockGram& gram() const { return gram_; }
  std::vector<double> coef_;
  const TensorJob& job_;
  std::string_view method_;

 private:
  std::vector<size_t> inputs_;
  int sub_;
  BlockGram::Segments seg_;
  uint64_t seg_len_;
  BlockGram gram_;
  std::vector<float> coef_f_;
};

}  // namespace amalgam::mdetail
