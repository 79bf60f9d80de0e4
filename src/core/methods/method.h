// The merge-method plugin interface. A method turns one tensor job (N input tensors of
// one shape + resolved parameters) into one output tensor, streaming: optional statistics
// passes over chunks (norms, dot products, exact magnitude thresholds), then an
// element-wise pass that writes each output chunk. Semantics: shared/design/METHODS.md.
//
// Determinism contract: chunks are whole multiples of reduction_block(); a merger keeps
// floating-point partial results per reduction block and combines them in block order
// in finish_pass(), and integer statistics (counts, histograms) in any order. So results
// do not depend on the chunk size or on which thread ran which chunk.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace amalgam {

struct ParamSpec {
  std::string name;
  bool per_model = false;                // a "tensor" parameter of each model (weight, density)
  std::optional<double> default_value;   // nullopt: required (or simply unset if !required)
  bool required = false;
  // Inclusive range check done at plan time (recipe error naming the line when violated).
  double min = -1e300, max = 1e300;
};

// How a method treats `base_model` (METHODS.md quick reference).
enum class BaseRole {
  Required,         // task-vector methods, slerp, model_stock, sce, nearswap, ...
  Optional,         // nuslerp, multislerp: origin when given
  CountedAsInput,   // linear, karcher: the base is one more input
  Ignored,          // passthrough
};

// Replaces the Bernoulli draws of DARE/DELLA in tests (METHODS.md §7 "injected masks").
class MaskSource {
 public:
  virtual ~MaskSource() = default;
  // keep element `index` of model `model` (input order, base excluded) with probability p?
  virtual bool keep(size_t model, uint64_t index, double p) const = 0;
};

// One output tensor's job, fully resolved by the planner.
struct TensorJob {
  std::string name;                  // output tensor name (messages, RNG key)
  std::vector<int64_t> shape;        // every input is presented in this shape
  std::vector<std::string> input_labels;  // model refs, for messages
  int base = -1;                     // index of the base model among inputs, -1 if none
  // Per input (base included): resolved per-model params (absent key = unset).
  std::vector<std::map<std::string, double>> model_params;
  // Resolved global params; defaults already applied by the planner.
  std::map<std::string, double> params;
  uint64_t seed = 0;
  bool is_embedding = false;
  const MaskSource* masks = nullptr;  // tests only; nullptr = counter-based RNG

  uint64_t numel() const;
  size_t n_inputs() const { return input_labels.size(); }
  double param(const std::string& key) const;                   // throws if absent
  double param_or(const std::string& key, double fallback) const;
  std::optional<double> model_param(size_t input, const std::string& key) const;
};

// A chunk of a job: `count` elements starting at flat element `begin` of every input,
// converted to f32. inputs[i] belongs to input i (base included, at job.base).
struct Chunk {
  uint64_t begin = 0;
  uint64_t count = 0;
  std::span<const float* const> inputs;
};

// A chunk whose inputs are all stored bf16, as their stored bits (no f32 copies): the
// inputs of TensorMerger::merge_bf16.
struct Bf16Chunk {
  uint64_t begin = 0;
  uint64_t count = 0;
  std::span<const uint16_t* const> inputs;
};

// Per-tensor state of a method. The executor calls, in order:
//   for pass in [0, stat_passes()): accumulate(pass, chunk) for every chunk (any order,
//   concurrently for distinct chunks), then finish_pass(pass) once;
//   then merge(chunk, out) for every chunk (any order, concurrently).
class TensorMerger {
 public:
  virtual ~TensorMerger() = default;
  virtual int stat_passes() const { return 0; }
  // Chunk boundaries are multiples of this many elements (e.g. a row for row-wise ranking).
  virtual uint64_t row_length() const { return 1; }
  // An optional sample before pass 0 (e.g. to bracket a selection threshold): when
  // sample_elements() > 0, observe_sample() gets the pieces of sample_pieces() (one
  // thread, in order), then sample_done(); then again while sample_elements() > 0 (a
  // first sample may ask for a larger one), at most kMaxSampleRounds times. Only the
  // speed may depend on the sample.
  virtual uint64_t sample_elements() const { return 0; }
  virtual void observe_sample(const Chunk& piece) {}
  virtual void sample_done() {}
  virtual void accumulate(int pass, const Chunk& chunk) {}
  // Whether statistics pass `pass` (asked during it) reads input `input`; inputs it does
  // not read are null in that pass's chunks. Default: all. A selection that needs another
  // pass for one model's cut (a sample that misled it) so reads the base and that model
  // instead of every input.
  virtual bool pass_reads(int pass, size_t input) const { return true; }
  virtual void finish_pass(int pass) {}
  virtual void merge(const Chunk& chunk, float* out) const = 0;
  // An optional path for bf16 checkpoints merged to bf16: the executor hands the stored
  // bits, and the merger converts each tile as it reads it, so no f32 copy of the chunk is
  // made (bf16 -> f32 copies were 12-13% of a linear or ties merge). It must give exactly
  // the bits of merge() rounded to bf16. It returns false when some f32 result was not
  // finite, `out` then unspecified: the executor runs merge() on that chunk instead, for
  // its finiteness check (METHODS.md §8.2).
  virtual bool has_bf16_merge() const { return false; }
  virtual bool merge_bf16(const Bf16Chunk& chunk, uint16_t* out) const { return false; }
  // The same for the statistics passes: accumulate() from the stored bf16 bits, with the
  // same effect on the merger's state.
  virtual bool has_bf16_accumulate() const { return false; }
  virtual void accumulate_bf16(int pass, const Bf16Chunk& chunk) {}
  // Warnings to report once for this tensor (e.g. breadcrumbs n_top = 0 departure).
  virtual std::vector<std::string> warnings() const { return {}; }
  // Bytes the merger holds between passes besides the chunks (DELLA's stored masks),
  // for the executor's memory estimate. Bounded by a constant, never by the model.
  virtual uint64_t held_bytes() const { return 0; }
};

class MergeMethod {
 public:
  virtual ~MergeMethod() = default;
  virtual std::string_view name() const = 0;
  virtual const std::vector<ParamSpec>& params() const = 0;
  virtual BaseRole base_role() const = 0;
  // Validates the job (input counts, parameter ranges that depend on the tensor such as
  // k = floor(density*N) > 0) and returns its merger. Throws Error(Recipe) naming the
  // tensor and the method.
  virtual std::unique_ptr<TensorMerger> create(const TensorJob& job) const = 0;
};

// Elements per reduction block for a tensor whose chunks must align to `row_length`:
// the smallest multiple of row_length that is >= 65536 (fixed: never the chunk size).
uint64_t reduction_block(uint64_t row_length);

// The pieces (first element, count) of a sample of about `want` of a tensor's n elements:
// runs of 1024 elements (128 from 2^20 elements on) spread evenly from the first element
// to the last.
std::vector<std::pair<uint64_t, uint64_t>> sample_pieces(uint64_t n, uint64_t want);
inline constexpr int kMaxSampleRounds = 3;

const MergeMethod* find_method(std::string_view name);  // nullptr if unknown
std::vector<std::string> method_names();

}  // namespace amalgam
