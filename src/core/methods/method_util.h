// Internal helpers shared by the method plugins in this folder (not a public contract):
// job validation with Error(Recipe) messages naming tensor + method, block iteration that
// keeps reductions independent of chunking, and the tile size of the element-wise loops.
// Invariant: every per-block reduction walks its block in tiles that start at the block
// start, so the floating-point order depends only on the data, never on the chunk size.
#pragma once
#include <algorithm>
#include <memory>
#include <optional>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "methods/method.h"
#include "util/error.h"

namespace amalgam::mdetail {

constexpr size_t kTile = 1024;  // elements per inner tile (stack-sized scratch)

[[noreturn]] void job_error(const TensorJob& job, std::string_view method, const std::string& what);

inline bool truthy(double v) { return v != 0.0; }

// Indices of the non-base inputs, in input order.
std::vector<size_t> non_base_inputs(const TensorJob& job);

// Required per-model parameter (error naming tensor, method, model).
double required_model_param(const TensorJob& job, std::string_view method, size_t input,
                            const std::string& key);
double model_param_or(const TensorJob& job, size_t input, const std::string& key, double fallback);

// Requires a base model among the inputs.
void require_base(const TensorJob& job, std::string_view method);

// Number of reduction blocks of a tensor.
inline uint64_t block_count(uint64_t numel, uint64_t block) { return (numel + block - 1) / block; }

// Calls f(block_index, first_element, count) for every reduction block of the chunk.
template <class F>
void for_each_block(const Chunk& chunk, uint64_t block, F&& f) {
  uint64_t end = chunk.begin + chunk.count;
  for (uint64_t b = chunk.begin; b < end; b += block) f(b / block, b, std::min(block, end - b));
}

// Calls f(offset_in_chunk, count) for tiles of at most kTile elements of [begin, begin+n)
// of the chunk (tiles start at `begin`, normally a block start).
template <class F>
void for_each_tile(uint64_t chunk_offset, uint64_t n, F&& f) {
  for (uint64_t t = 0; t < n; t += kTile) f(chunk_offset + t, std::min<uint64_t>(kTile, n - t));
}

// Merger that copies one input (the "return it unchanged" cases of METHODS.md §5).
std::unique_ptr<TensorMerger> make_copy_merger(size_t input, float scale = 1.0f);

// Output values must be finite where the inputs were (METHODS.md §8.2): checked on
// coefficients before the element-wise pass.
void require_finite(const TensorJob& job, std::string_view method, double v, const char* what);

// A MergeMethod described by data: name, parameters, base role and a factory.
class SimpleMethod final : public MergeMethod {
 public:
  using Factory = std::unique_ptr<TensorMerger> (*)(const TensorJob& job, std::string_view name);
  SimpleMethod(std::string name, std::vector<ParamSpec> params, BaseRole role, Factory factory)
      : name_(std::move(name)), params_(std::move(params)), role_(role), factory_(factory) {}
  std::string_view name() const override { return name_; }
  const std::vector<ParamSpec>& params() const override { return params_; }
  BaseRole base_role() const override { return role_; }
  std::unique_ptr<TensorMerger> create(const TensorJob& job) const override {
    return factory_(job, name_);
  }

 private:
  std::string name_;
  std::vector<ParamSpec> params_;
  BaseRole role_;
  Factory factory_;
};

// ParamSpec shorthands.
inline ParamSpec model_param(std::string name, std::optional<double> def, bool required = false,
                             double lo = -1e300, double hi = 1e300) {
  return ParamSpec{std::move(name), true, def, required, lo, hi};
}
inline ParamSpec global_param(std::string name, std::optional<double> def, bool required = false,
                              double lo = -1e300, double hi = 1e300) {
  return ParamSpec{std::move(name), false, def, required, lo, hi};
}

}  // namespace amalgam::mdetail
