// The generalized task arithmetic family (METHODS.md §5.2): task_arithmetic, ties,
// dare_ties, dare_linear, breadcrumbs, breadcrumbs_ties, della, della_linear are one
// implementation parameterized by sparsifier x sign consensus x defaults.
// Statistics passes: exact magnitude selection (radix select, up to 3 passes, see
// kernels/radix_select.h) for magnitude/breadcrumbs, then one L1 pass when rescale is
// on and some model is sparsified. Random masks come from Philox (§8.3) or job.masks.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <type_traits>
#include <vector>

#include "kernels/convert.h"
#include "kernels/philox.h"
#include "kernels/radix_select.h"
#include "kernels/reduce.h"
#include "kernels/simd.h"
#include "methods/gta_kernels.h"
#include "methods/method_util.h"
#include "util/heap.h"

namespace amalgam {
namespace {
using namespace mdetail;

enum class Sparsifier { None, Magnitude, Random, Outliers, Della };

struct GtaKind {
  const char* name;
  Sparsifier sparsifier;
  bool consensus;
  bool normalize;
  bool rescale;
};

struct ModelState {
  size_t input = 0;      // index among the job's inputs
  uint32_t ordinal = 0;  // index among the non-base inputs (RNG / MaskSource model id)
  float weight = 0;
  double rho = 1, gamma = 0.01, eps = 0.15;
  bool sparsified = false;  // a mask applies (rho < 1 and a sparsifier)
  bool zero = false;        // della/dare with rho <= 0: everything pruned
  std::unique_ptr<TopSelector> keep_top;  // magnitude: top k; outliers: top N - n_bot
  std::unique_ptr<TopSelector> drop_top;  // outliers: top n_top (dropped)
  float scale = 1.0f;                     // L1 rescale factor a/b
  std::vector<double> sum_all, sum_kept;  // per block, for the rescale
  // DELLA's masks drawn in the rescale pass, one bit per element, so the element-wise
  // pass reuses them instead of ranking and drawing again. Kept when the
  // tensor's masks fit kMaskBudget; otherwise empty and the masks are recomputed.
  bool stores_mask = false;  // kept_bits is allocated by the first rescale accumulate
  // Zeroed words in the merger's mask block, read and written through std::atomic_ref.
  uint64_t* kept_bits = nullptr;
};

// Bytes of stored masks per tensor (all its models): a bound independent of model size.
constexpr uint64_t kMaskBudget = uint64_t{96} << 20;

class GtaMerger final : public TensorMerger {
 public:
  GtaMerger(const TensorJob& job, const GtaKind& kind) : job_(job), kind_(kind) {
    n_ = job.numel();
    normalize_ = truthy(job.param_or("normalize", kind.normalize));
    rescale_ = truthy(job.param_or("rescale", kind.rescale));
    lambda_ = static_cast<float>(job.param_or("lambda", 1.0));
    base_ = static_cast<size_t>(job.base);
    rng_key_ = philox_tensor_key(job.seed, job.name);
    set_layout();
    block_ = reduction_block(row_length());
    const uint64_t blocks = block_count(n_, block_);
    uint32_t ordinal = 0;
    double wsum = 0;
    for (size_t i : non_base_inputs(job)) {
      ModelState m;
      m.input = i;
      m.ordinal = ordinal++;
      double w = required_model_param(job, kind.name, i, "weight");
      m.weight = static_cast<float>(w);
      wsum += w;
      m.rho = model_param_or(job, i, "density", 1.0);
      m.gamma = model_param_or(job, i, "gamma", 0.01);
      m.eps = model_param_or(job, i, "epsilon", 0.15);
      configure_sparsifier(m, blocks);
      if (m.sparsified && rescale_) {
        m.sum_all.assign(blocks, 0.0);
        m.sum_kept.assign(blocks, 0.0);
        need_rescale_ = true;
      }
      models_.push_back(std::move(m));
    }
    weight_sum_ = static_cast<float>(std::fabs(wsum) < 1e-8 ? 1.0 : wsum);
    size_t stored_masks = 0;
    for (auto& m : models_) {
      any_select_ |= m.keep_top != nullptr;
      any_sparsified_ |= m.sparsified;
      stored_masks += !m.sum_all.empty() && stores_masks() && !m.zero;
    }
    if (stored_masks > 0 && stored_masks * ((n_ + 63) / 64) * 8 <= kMaskBudget) {
      for (auto& m : models_) m.stores_mask = !m.sum_all.empty() && !m.zero;
    }
  }

  uint64_t row_length() const override { return kind_.sparsifier == Sparsifier::Della ? slab_ : 1; }

  int stat_passes() const override { return passes_done_ + passes_left(); }

  // The selectors' bracket or window samples (kernels/radix_select.h): all of them see the largest
  // sample any of them wants.
  uint64_t sample_elements() const override {
    uint64_t want = 0;
    for (const auto& m : models_)
      for (const TopSelector* s : {m.keep_top.get(), m.drop_top.get()})
        if (s) want = std::max(want, s->bracket_sample_size());
    return want;
  }

  void observe_sample(const Chunk& piece) override {
    std::vector<uint32_t> keys(piece.count);
    for (auto& m : models_) {
      const bool a = m.keep_top && m.keep_top->bracket_sample_size() > 0;
      const bool b = m.drop_top && m.drop_top->bracket_sample_size() > 0;
      if (!a && !b) continue;
      delta_keys_only(piece.inputs[m.input], piece.inputs[base_], piece.count, keys.data());
      if (a) m.keep_top->sample(keys.data(), piece.count);
      if (b) m.drop_top->sample(keys.data(), piece.count);
    }
  }

  void sample_done() override {
    for (auto& m : models_)
      for (TopSelector* s : {m.keep_top.get(), m.drop_top.get()})
        if (s) s->end_sample();
  }

  void accumulate(int, const Chunk& chunk) override {
    if (selecting()) return accumulate_select<float>(chunk.begin, chunk.count, chunk.inputs);
    if (need_rescale_) return accumulate_rescale<float>(chunk.begin, chunk.count, chunk.inputs);
  }
  bool has_bf16_accumulate() const override { return true; }
  void accumulate_bf16(int, const Bf16Chunk& chunk) override {
    if (selecting()) return accumulate_select<uint16_t>(chunk.begin, chunk.count, chunk.inputs);
    if (need_rescale_) return accumulate_rescale<uint16_t>(chunk.begin, chunk.count, chunk.inputs);
  }

  // A selection pass after the first reads the base and the models whose cuts it still
  // looks for (0.5B bench, breadcrumbs: 45 of 290 tensors take a second pass, for one or
  // two of their four models' top cut).
  bool pass_reads(int, size_t input) const override {
    if (!selecting() || input == base_) return true;
    for (const auto& m : models_)
      if (m.input == input)
        return (m.keep_top && m.keep_top->stage() != TopSelector::kDone) ||
               (m.drop_top && m.drop_top->stage() != TopSelector::kDone);
    return true;
  }

  void finish_pass(int) override {
    ++passes_done_;
    if (selecting()) {
      for (auto& m : models_) {
        if (shares_first_pass(m)) m.drop_top->share_histogram_from(*m.keep_top);
        if (m.keep_top) m.keep_top->finish_pass();
        if (m.drop_top) m.drop_top->finish_pass();
      }
      return;
    }
    if (need_rescale_) {
      for (auto& m : models_) {
        if (!m.sparsified || m.sum_all.empty()) continue;
        double a = 0, b = 0;
        for (size_t k = 0; k < m.sum_all.size(); ++k) {
          a += m.sum_all[k];
          b += m.sum_kept[k];
        }
        // mergekit: leave as is when either L1 norm is (near) zero (§5.2.1).
        m.scale = (a < 1e-7 || b < 1e-7) ? 1.0f : static_cast<float>(a / b);
      }
      need_rescale_ = false;
    }
  }

  void merge(const Chunk& chunk, float* out) const override {
    merge_tiles<float>(chunk.begin, chunk.count, chunk.inputs, out, nullptr);
  }
  bool has_bf16_merge() const override { return true; }
  bool merge_bf16(const Bf16Chunk& chunk, uint16_t* out) const override {
    return merge_tiles<uint16_t>(chunk.begin, chunk.count, chunk.inputs, nullptr, out);
  }

  std::vector<std::string> warnings() const override { return warnings_; }

  uint64_t held_bytes() const override {
    uint64_t b = 0;
    for (const auto& m : models_) b += m.stores_mask ? (n_ + 63) / 64 * 8 : 0;
    return b;
  }

 private:
  // DELLA's masks cost a row sort and a draw per element, DARE's a draw (Philox, 28% of a
  // dare_ties merge when drawn in both passes): stored between the passes as bits.
  bool stores_masks() const {
    return kind_.sparsifier == Sparsifier::Della || kind_.sparsifier == Sparsifier::Random;
  }
  static void store_mask(const ModelState& m, uint64_t g, const float* mask, size_t n);
  // Elements [g, g + n) are whole words of the stored masks (DARE's tiles, DELLA's rows
  // of a multiple of 64).
  static bool whole_words(uint64_t g, size_t n) { return g % 64 == 0 && n % 64 == 0; }
  // DARE's plain draw (compute_mask's Random case with Philox) on whole words.
  bool random_words(const ModelState& m, uint64_t g, size_t n) const {
    return kind_.sparsifier == Sparsifier::Random && m.kept_bits && !m.zero && !job_.masks && whole_words(g, n);
  }
  static void load_mask(const ModelState& m, uint64_t g, size_t n, float* mask);
  // Words [g / 64, g / 64 + count) of m's stored mask (g a multiple of 64).
  static void store_words(const ModelState& m, uint64_t g, const uint64_t* words, size_t count) {
    for (size_t w = 0; w < count; ++w)
      std::atomic_ref<uint64_t>(m.kept_bits[g / 64 + w]).store(words[w], std::memory_order_relaxed);
  }
  static void load_words(const ModelState& m, uint64_t g, size_t count, uint64_t* words) {
    for (size_t w = 0; w < count; ++w)
      words[w] = std::atomic_ref<uint64_t>(m.kept_bits[g / 64 + w]).load(std::memory_order_relaxed);
  }
  // Both breadcrumbs cuts still need the first histogram of the same keys: gather it once.
  static bool shares_first_pass(const ModelState& m) {
    return m.keep_top && m.drop_top && m.keep_top->stage() == TopSelector::kHi &&
           m.drop_top->stage() == TopSelector::kHi;
  }
  bool selecting() const {
    for (auto& m : models_)
      if ((m.keep_top && m.keep_top->stage() != TopSelector::kDone) ||
          (m.drop_top && m.drop_top->stage() != TopSelector::kDone))
        return true;
    return false;
  }
  int passes_left() const {
    int sel = 0;
    for (auto& m : models_) {
      if (m.keep_top) sel = std::max(sel, m.keep_top->passes_left());
      if (m.drop_top) sel = std::max(sel, m.drop_top->passes_left());
    }
    return sel + (need_rescale_ ? 1 : 0);
  }

  void set_layout() {
    // DELLA ranks along axis 1 (§5.2.1): a slab = one index of axis 0; inside it, groups
    // of length shape[1] with stride prod(shape[2:]). 1-D tensors are one group.
    const auto& s = job_.shape;
    if (s.size() <= 1) {
      slab_ = std::max<uint64_t>(n_, 1);
      group_len_ = slab_;
      stride_ = 1;
    } else {
      stride_ = 1;
      for (size_t d = 2; d < s.size(); ++d) stride_ *= static_cast<uint64_t>(s[d]);
      group_len_ = static_cast<uint64_t>(s[1]);
      slab_ = std::max<uint64_t>(group_len_ * stride_, 1);
    }
    unit_ = kind_.sparsifier == Sparsifier::Della ? slab_ : kTile;
  }

  void configure_sparsifier(ModelState& m, uint64_t blocks) {
    const Sparsifier sp = kind_.sparsifier;
    if (sp == Sparsifier::None || m.rho >= 1.0) return;
    const double N = static_cast<double>(n_);
    switch (sp) {
      case Sparsifier::Magnitude: {
        double kf = std::floor(m.rho * N);
        if (kf <= 0)
          job_error(job_, kind_.name,
                    fmt::format("density {} keeps k = floor(density * {}) = 0 elements; set a "
                                "filtered density for small tensors",
                                m.rho, n_));
        m.keep_top = std::make_unique<TopSelector>(n_, static_cast<uint64_t>(kf), blocks, true, false);
        // The sample chooses: a window scan for keys of bf16 task vectors, else a bracket.
        m.keep_top->enable_bracket();
        m.keep_top->enable_window_sample();
        break;
      }
      case Sparsifier::Outliers: {
        int64_t N_ = static_cast<int64_t>(n_);
        int64_t keep = static_cast<int64_t>(std::floor(std::max(m.rho, 0.0) * N));
        int64_t n_top = static_cast<int64_t>(std::floor(std::max(m.gamma, 0.0) * N));
        int64_t n_bot = N_ - keep - n_top;
        if (n_bot < 0) {
          n_top += n_bot;
          n_bot = 0;
        }
        if (n_top == 0 && warnings_.empty())
          warnings_.push_back(fmt::format(
              "{}: tensor {}: n_top = floor(gamma * {}) = 0, keeping ranks [n_bot, N) "
              "(mergekit keeps nothing and returns the base here)",
              kind_.name, job_.name, n_));
        m.keep_top = std::make_unique<TopSelector>(n_, static_cast<uint64_t>(N_ - n_bot), blocks, true, false);
        m.drop_top = std::make_unique<TopSelector>(n_, static_cast<uint64_t>(n_top), blocks, true, false);
        // No brackets here: one shared histogram serves both cuts, cheaper than two
        // bracket scans (0.5B bench: 2.05-2.3 s against 2.5-2.8 s).
        if (shares_first_pass(m)) m.drop_top->follow(*m.keep_top);
        // A sample places both cuts' windows: the first chunk's guess at the keep cut
        // (ranks 1 - density +- 5 %, often down among the zeros) spanned thousands of bins.
        m.keep_top->enable_window_sample();
        m.drop_top->enable_window_sample();
        break;
      }
      case Sparsifier::Random:
        if (m.rho <= 0) m.zero = true;
        break;
      case Sparsifier::Della:
        if (m.rho <= 0) {
          m.zero = true;
        } else if (!(m.rho - m.eps > 0) || !(m.rho + m.eps < 1)) {
          job_error(job_, kind_.name,
                    fmt::format("density {} +- epsilon {} must stay inside (0, 1)", m.rho, m.eps));
        }
        break;
      case Sparsifier::None: break;
    }
    m.sparsified = true;
  }

  // d = x - b, and the magnitude keys of d for the sparsifiers that rank (DARE's random
  // masks do not look at magnitudes).
  template <class X>  // float, or bf16 bits (merge_bf16)
  void task_vector(const X* x, const float* b, size_t n, float* d, uint32_t* keys) const {
    if (kind_.sparsifier == Sparsifier::Random)
      delta_only(x, b, n, d);
    else
      delta_keys(x, b, n, d, keys);
  }

  // Rank counters of the tie-cut selections, per block.
  struct Ranks {
    uint64_t keep = 0, drop = 0;
  };
  Ranks block_ranks(const ModelState& m, uint64_t block) const {
    Ranks r;
    if (m.keep_top) r.keep = m.keep_top->equal_before(block);
    if (m.drop_top) r.drop = m.drop_top->equal_before(block);
    return r;
  }

  // True when `cut` over elements [g, g + n) is `key > T` or `key >= T` for the whole span
  // (always, except the one span where the tie cut falls); `rank` = its equal keys before g.
  static bool plain_cut(const TopCut& cut, uint64_t g, size_t n, uint64_t rank) {
    switch (cut.ties) {
      case TopCut::All: return true;
      case TopCut::ByIndex: return cut.cut_index < g || cut.cut_index >= g + n - 1;
      case TopCut::ByRank: return rank >= cut.need || rank + n <= cut.need;
    }
    return false;
  }
  // For a span where plain_cut holds: are keys == T selected?
  static bool cut_keeps_equal(const TopCut& cut, uint64_t g, size_t n, uint64_t rank) {
    switch (cut.ties) {
      case TopCut::All: return true;
      case TopCut::ByIndex: return cut.cut_index >= g + n - 1;
      case TopCut::ByRank: return rank < cut.need;
    }
    return true;
  }
  // TIES' magnitude cut of model m is a plain comparison over [g, g + n).
  bool threshold_only(const ModelState& m, uint64_t g, size_t n, const Ranks& r) const {
    if (kind_.sparsifier != Sparsifier::Magnitude || !m.keep_top || m.drop_top) return false;
    return plain_cut(m.keep_top->cut(), g, n, r.keep);
  }
  // Both breadcrumbs cuts of model m (keep the top N - n_bot, drop the top n_top) are.
  bool band_only(const ModelState& m, uint64_t g, size_t n, const Ranks& r) const {
    if (kind_.sparsifier != Sparsifier::Outliers || !m.keep_top || !m.drop_top) return false;
    return plain_cut(m.keep_top->cut(), g, n, r.keep) && plain_cut(m.drop_top->cut(), g, n, r.drop);
  }

  // mask[i] in {0, 1} for elements [g, g + n) (global index g) with deltas d.
  void compute_mask(const ModelState& m, uint64_t g, const float* d, size_t n, Ranks& r,
                    float* mask, uint32_t* keys, float* tmp) const;
  // DELLA's keep probability p[i] of each element of whole slabs, from its keys' ranks.
  void della_probabilities(const ModelState& m, const uint32_t* keys, size_t n, float* p) const;
  // DELLA's draw (compute_mask's Della case with Philox) on whole words.
  bool della_words(const ModelState& m, uint64_t g, size_t n) const {
    return kind_.sparsifier == Sparsifier::Della && m.kept_bits && !m.zero && !job_.masks && whole_words(g, n);
  }

  // accumulate() (X = float) and accumulate_bf16() (X = bf16 bits): one body each.
  template <class X>
  void accumulate_select(uint64_t begin, uint64_t count, std::span<const X* const> in);
  // merge() with X = float (results to out32), merge_bf16() with X = bf16 bits (results
  // rounded tile by tile to out16; false when one was not finite). One body, so both paths
  // do the same operations in the same order.
  template <class X>
  bool merge_tiles(uint64_t begin, uint64_t count, std::span<const X* const> in, float* out32,
                   uint16_t* out16) const;
  // Breadcrumbs (no consensus) on a bf16 tile [g, g + n) whose every cut is plain: the
  // fused band_sum_bf16 into out, tie ranks advanced, finite updated. False: not taken.
  bool band_tile_bf16(uint64_t g, size_t n, uint64_t off, std::span<const uint16_t* const> in, std::vector<Ranks>& ranks,
                      uint16_t* out, bool& finite) const;
  template <class X>
  void accumulate_rescale(uint64_t begin, uint64_t count, std::span<const X* const> in);

  const TensorJob& job_;
  GtaKind kind_;
  uint64_t n_ = 0, block_ = 65536, slab_ = 1, group_len_ = 1, stride_ = 1, unit_ = kTile;
  size_t base_ = 0;
  bool normalize_ = false, rescale_ = false, need_rescale_ = false, any_select_ = false, any_sparsified_ = false;
  float lambda_ = 1.0f, weight_sum_ = 1.0f;
  uint64_t rng_key_ = 0;
  int passes_done_ = 0;
  std::once_flag masks_allocated_;
  // Every stored mask of the tensor in one block: on huge pages once it spans one (the
  // first-touch faults of 4 KiB pages were 10% of a dare_ties merge on this VM).
  struct FreeWords {
    void operator()(uint64_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint64_t[], FreeWords> mask_block_;
  std::vector<ModelState> models_;
  std::vector<std::string> warnings_;
};

void GtaMerger::compute_mask(const ModelState& m, uint64_t g, const float* d, size_t n, Ranks& r,
                             float* mask, uint32_t* keys, float* tmp) const {
  switch (kind_.sparsifier) {
    case Sparsifier::Magnitude:
    case Sparsifier::Outliers: {
      apply_top_cut(m.keep_top->cut(), g, keys, n, &r.keep, mask);
      if (m.drop_top) {
        apply_top_cut(m.drop_top->cut(), g, keys, n, &r.drop, tmp);
        for (size_t i = 0; i < n; ++i) mask[i] *= 1.0f - tmp[i];
      }
      return;
    }
    case Sparsifier::Random: {
      if (m.zero) {
        std::fill(mask, mask + n, 0.0f);
      } else if (job_.masks) {
        for (size_t i = 0; i < n; ++i) mask[i] = job_.masks->keep(m.ordinal, g + i, m.rho) ? 1.0f : 0.0f;
      } else {
        thread_local std::vector<uint64_t> bits;
        bits.resize((n + 63) / 64);
        philox_keep_bits(rng_key_, m.ordinal, g, n, m.rho, bits.data());
        bits_to_mask(bits.data(), n, mask);
      }
      return;
    }
    case Sparsifier::Della: {
      if (m.zero) {
        std::fill(mask, mask + n, 0.0f);
        return;
      }
      della_probabilities(m, keys, n, tmp);
      if (job_.masks) {
        for (size_t i = 0; i < n; ++i) mask[i] = job_.masks->keep(m.ordinal, g + i, tmp[i]) ? 1.0f : 0.0f;
      } else {
        thread_local std::vector<uint64_t> bits;
        bits.resize((n + 63) / 64);
        philox_keep_bits_v(rng_key_, m.ordinal, g, n, tmp, bits.data());
        bits_to_mask(bits.data(), n, mask);
      }
      return;
    }
    case Sparsifier::None:
      std::fill(mask, mask + n, 1.0f);
      return;
  }
}

void GtaMerger::della_probabilities(const ModelState& m, const uint32_t* keys, size_t n, float* p) const {
  // n is a whole number of slabs; rank each group (axis-1 fibre) by ascending |delta|,
  // ties by lower index (§8.4), p = (rho - eps) + 2 eps (r - 1)/(C - 1) (§5.2.1, §8.6).
  thread_local RankScratch scratch;
  thread_local std::vector<uint32_t> gk;
  // The probability table only depends on (C, rho, eps): rebuilt when those change.
  thread_local std::vector<float> ptab;
  thread_local uint64_t ptab_c = 0;
  thread_local double ptab_rho = -1, ptab_eps = -1;
  const uint64_t C = group_len_;
  if (ptab_c != C || ptab_rho != m.rho || ptab_eps != m.eps || ptab.size() != C) {
    ptab.resize(C);
    const double lo = m.rho - m.eps, span = 2 * m.eps;
    for (uint64_t q = 0; q < C; ++q)
      ptab[q] = static_cast<float>(C == 1 ? m.rho : lo + span * (static_cast<double>(q) / (C - 1)));
    ptab_c = C;
    ptab_rho = m.rho;
    ptab_eps = m.eps;
  }
  if (stride_ == 1) {
    rank_lookup_rows(keys, n / C, C, ptab.data(), p, scratch);
  } else {
    for (uint64_t s0 = 0; s0 < n; s0 += slab_) {
      gk.resize(C);
      for (uint64_t j = 0; j < stride_; ++j) {
        for (uint64_t c = 0; c < C; ++c) gk[c] = keys[s0 + j + c * stride_];
        rank_lookup(gk.data(), C, ptab.data(), p + s0 + j, stride_, scratch);
      }
    }
  }
}

// Chunk edges need not fall on 64-element words (DELLA's blocks are whole rows), so the
// words are OR-ed atomically; the element-wise pass reads them after finish_pass.
void GtaMerger::store_mask(const ModelState& m, uint64_t g, const float* mask, size_t n) {
  if (whole_words(g, n)) {
    // Whole words of this span alone: packed by the vector kernel, stored.
    for (size_t s = 0; s < n; s += kTile) {
      const size_t c = std::min(kTile, n - s);
      uint64_t words[kTile / 64];
      pack_mask_words(mask + s, c / 64, words);
      store_words(m, g + s, words, c / 64);
    }
    return;
  }
  size_t i = 0;
  while (i < n) {
    const uint64_t word = (g + i) / 64, bit0 = (g + i) % 64;
    const size_t take = std::min<uint64_t>(64 - bit0, n - i);
    uint64_t w = 0;
    for (size_t j = 0; j < take; ++j) w |= static_cast<uint64_t>(mask[i + j] != 0.0f) << (bit0 + j);
    if (w) std::atomic_ref<uint64_t>(m.kept_bits[word]).fetch_or(w, std::memory_order_relaxed);
    i += take;
  }
}

void GtaMerger::load_mask(const ModelState& m, uint64_t g, size_t n, float* mask) {
  if (whole_words(g, n)) {
    for (size_t s = 0; s < n; s += kTile) {
      const size_t c = std::min(kTile, n - s);
      uint64_t words[kTile / 64];
      load_words(m, g + s, c / 64, words);
      unpack_mask_words(words, c / 64, mask + s);
    }
    return;
  }
  size_t i = 0;
  while (i < n) {
    const uint64_t word = (g + i) / 64, bit0 = (g + i) % 64;
    const size_t take = std::min<uint64_t>(64 - bit0, n - i);
    const uint64_t w = std::atomic_ref<uint64_t>(m.kept_bits[word]).load(std::memory_order_relaxed) >> bit0;
    for (size_t j = 0; j < take; ++j) mask[i + j] = static_cast<float>((w >> j) & 1);
    i += take;
  }
}

template <class X>
void GtaMerger::accumulate_select(uint64_t begin, uint64_t count_all, std::span<const X* const> in) {
  std::vector<uint32_t> keys(kTile);
  std::vector<TopSelector::Local> locals(2 * models_.size());
  for_each_block(Chunk{begin, count_all, {}}, block_, [&](uint64_t blk, uint64_t first, uint64_t count) {
    for (size_t k = 0; k < models_.size(); ++k) {
      auto& m = models_[k];
      bool a = m.keep_top && m.keep_top->stage() != TopSelector::kDone;
      bool b = m.drop_top && m.drop_top->stage() != TopSelector::kDone;
      if (!a && !b) continue;
      if (shares_first_pass(m)) b = false;  // finish_pass copies keep_top's histogram
      // One cut (ties), or breadcrumbs' two windows: the keys computed in the scan of the
      // whole block (long scans amortize the window's tables, window_scan.cc).
      const X* xb = in[m.input] + (first - begin);
      const X* bb = in[base_] + (first - begin);
      if (a && !b) {
        m.keep_top->observe_delta(locals[2 * k], blk, first, xb, bb, count);
        continue;
      }
      if (a && b &&
          TopSelector::observe_delta_pair(*m.keep_top, locals[2 * k], *m.drop_top, locals[2 * k + 1], blk, xb, bb,
                                          count))
        continue;
      for_each_tile(first - begin, count, [&](uint64_t off, uint64_t n) {
        const X* x = in[m.input] + off;
        const X* bx = in[base_] + off;
        delta_keys_only(x, bx, n, keys.data());
        if (a) m.keep_top->observe(locals[2 * k], blk, begin + off, keys.data(), n);
        if (b) m.drop_top->observe(locals[2 * k + 1], blk, begin + off, keys.data(), n);
      });
    }
  });
  for (size_t k = 0; k < models_.size(); ++k) {
    if (models_[k].keep_top) models_[k].keep_top->commit(locals[2 * k]);
    if (models_[k].drop_top) models_[k].drop_top->commit(locals[2 * k + 1]);
  }
}

template <class X>
void GtaMerger::accumulate_rescale(uint64_t begin, uint64_t count_all, std::span<const X* const> in) {
  // Allocated here, not in the constructor: the memory estimate creates every merger.
  std::call_once(masks_allocated_, [this] {
    const size_t words = (n_ + 63) / 64;
    size_t stored = 0;
    for (const auto& m : models_) stored += m.stores_mask;
    if (stored == 0) return;
    const size_t bytes = stored * words * sizeof(uint64_t);
    mask_block_.reset(static_cast<uint64_t*>(std::malloc(bytes)));
    if (!mask_block_) throw std::bad_alloc();
    advise_huge_pages(mask_block_.get(), bytes);  // before the first touch (the memset)
    std::memset(mask_block_.get(), 0, bytes);
    uint64_t* next = mask_block_.get();
    for (auto& m : models_) {
      if (!m.stores_mask) continue;
      m.kept_bits = next;
      next += words;
    }
  });
  std::vector<float> d(unit_), mask(unit_), tmp(unit_), base32(std::is_same_v<X, float> ? 0 : unit_);
  std::vector<uint32_t> keys(unit_);
  std::vector<uint64_t> words(unit_ / 64);
  // Tie ranks run on through the chunk's blocks (equal_before is exact at a chunk start).
  std::vector<Ranks> ranks(models_.size());
  for (size_t k = 0; k < models_.size(); ++k) ranks[k] = block_ranks(models_[k], begin / block_);
  // The base as f32 (bf16: the unit at `off` converted into base32).
  auto base_at = [&](uint64_t off, size_t n) -> const float* {
    if constexpr (std::is_same_v<X, float>) {
      return in[base_] + off;
    } else {
      to_f32(DType::BF16, in[base_] + off, base32.data(), n);
      return base32.data();
    }
  };
  for_each_block(Chunk{begin, count_all, {}}, block_, [&](uint64_t blk, uint64_t first, uint64_t count) {
    // Unit by unit (the base converted once for all models); each model's sums still
    // run over its units in order.
    std::vector<double> a(models_.size()), b(models_.size());
    for (uint64_t t = 0; t < count; t += unit_) {
      const size_t n = std::min<uint64_t>(unit_, count - t);
      const uint64_t off = first - begin + t;
      const float* base = base_at(off, n);
      for (size_t k = 0; k < models_.size(); ++k) {
        auto& m = models_[k];
        if (m.sum_all.empty()) continue;
        double all, kept;
        if (random_words(m, first + t, n)) {
          // DARE's draw as bits straight away, and the sums of the deltas under them:
          // task_vector + compute_mask + store_mask + sum_abs_pair_f64, the same bits.
          philox_keep_bits(rng_key_, m.ordinal, first + t, n, m.rho, words.data());
          store_words(m, first + t, words.data(), n / 64);
          sum_abs_delta_bits_f64(in[m.input] + off, base, words.data(), n, &all, &kept);
        } else if (della_words(m, first + t, n)) {
          // The same for DELLA: its ranks' probabilities, the draw as bits, the sums.
          delta_keys_only(in[m.input] + off, in[base_] + off, n, keys.data());
          della_probabilities(m, keys.data(), n, tmp.data());
          philox_keep_bits_v(rng_key_, m.ordinal, first + t, n, tmp.data(), words.data());
          store_words(m, first + t, words.data(), n / 64);
          sum_abs_delta_bits_f64(in[m.input] + off, base, words.data(), n, &all, &kept);
        } else {
          task_vector(in[m.input] + off, base, n, d.data(), keys.data());
          compute_mask(m, first + t, d.data(), n, ranks[k], mask.data(), keys.data(), tmp.data());
          if (m.kept_bits) store_mask(m, first + t, mask.data(), n);
          sum_abs_pair_f64(d.data(), mask.data(), n, &all, &kept);
        }
        a[k] += all;
        b[k] += kept;
      }
    }
    for (size_t k = 0; k < models_.size(); ++k) {
      if (models_[k].sum_all.empty()) continue;
      models_[k].sum_all[blk] = a[k];
      models_[k].sum_kept[blk] = b[k];
    }
  });
}

bool GtaMerger::band_tile_bf16(uint64_t g, size_t n, uint64_t off, std::span<const uint16_t* const> in,
                               std::vector<Ranks>& ranks, uint16_t* out, bool& finite) const {
  const size_t M = models_.size();
  if (kind_.sparsifier != Sparsifier::Outliers || kind_.consensus || M > kMaxBandModels) return false;
  BandCut cuts[kMaxBandModels];
  const uint16_t* xs[kMaxBandModels];
  for (size_t k = 0; k < M; ++k) {
    const ModelState& m = models_[k];
    xs[k] = in[m.input] + off;
    cuts[k].w = m.weight;
    cuts[k].s = m.scale;
    if (!m.sparsified) continue;  // every key kept: w * (d * s), as weigh() with s = 1
    if (!m.keep_top || !m.drop_top) return false;
    const TopCut &keep = m.keep_top->cut(), &drop = m.drop_top->cut();
    // plain_cut assumes every key of the tile may equal T; a rank cut a few tiles ahead
    // usually has only its few equal keys here (bf16 task vectors: 10-30 a tile): all
    // below `need`, so all selected. Counting them keeps ~10% of the tiles fused.
    auto plain = [&](const TopCut& cut, uint64_t rank) {
      return plain_cut(cut, g, n, rank) ||
             (cut.ties == TopCut::ByRank && rank + count_delta_equal(xs[k], in[base_] + off, n, cut.threshold) <= cut.need);
    };
    if (!plain(keep, ranks[k].keep) || !plain(drop, ranks[k].drop)) return false;
    cuts[k].keep_t = keep.threshold;
    cuts[k].keep_equal = cut_keeps_equal(keep, g, n, ranks[k].keep);
    cuts[k].drop_t = drop.threshold;
    cuts[k].drop_equal = cut_keeps_equal(drop, g, n, ranks[k].drop);
  }
  BandCounts counts[kMaxBandModels];
  finite &= band_sum_bf16(xs, M, in[base_] + off, n, cuts, normalize_, weight_sum_, lambda_, out, counts);
  for (size_t k = 0; k < M; ++k) {
    ranks[k].keep += counts[k].keep_equal;
    ranks[k].drop += counts[k].drop_equal;
  }
  return true;
}

namespace {
struct MergeScratch {
  std::vector<float> E, mask, tmp, D, Z, S, w, B, O;
  std::vector<uint32_t> keys;
  std::vector<uint64_t> words;  // a unit's stored mask bits
  void size(size_t M, size_t unit) {
    if (words.size() < unit / 64) words.resize(unit / 64);
    for (auto* v : {&mask, &tmp, &D, &Z, &S, &B, &O})
      if (v->size() < unit) v->resize(unit);
    if (E.size() < M * unit) E.resize(M * unit);
    if (w.size() < M) w.resize(M);
    if (keys.size() < unit) keys.resize(unit);
  }
};
}  // namespace

template <class X>
bool GtaMerger::merge_tiles(uint64_t begin, uint64_t count, std::span<const X* const> in, float* out32,
                            uint16_t* out16) const {
  constexpr bool kBf16 = std::is_same_v<X, uint16_t>;
  const size_t M = models_.size();
  // Per-thread scratch, grown once: fresh zeroed vectors per call were 3% of a ties merge.
  thread_local MergeScratch scratch;
  scratch.size(M, std::max<uint64_t>(unit_, kTile));
  std::vector<float>&E = scratch.E, &mask = scratch.mask, &tmp = scratch.tmp, &D = scratch.D, &Z = scratch.Z,
                    &S = scratch.S, &w = scratch.w;
  std::vector<uint32_t>& keys = scratch.keys;
  for (size_t k = 0; k < M; ++k) w[k] = models_[k].weight;
  // bf16: the base tile is converted once for all models, results go to an f32 tile that
  // is rounded to the output as soon as it is complete.
  bool finite = true;
  auto base_tile = [&](uint64_t off, size_t n) -> const float* {
    if constexpr (kBf16) {
      to_f32(DType::BF16, in[base_] + off, scratch.B.data(), n);
      return scratch.B.data();
    } else {
      return in[base_] + off;
    }
  };
  auto out_tile = [&](uint64_t off) -> float* {
    if constexpr (kBf16) return scratch.O.data();
    else return out32 + off;
  };
  auto emit = [&](uint64_t off, size_t n) {
    if constexpr (kBf16) finite &= f32_to_bf16_finite(scratch.O.data(), out16 + off, n);
  };
  if (M == 0) {
    for_each_tile(0, count, [&](uint64_t off, uint64_t n) {
      const float* b = base_tile(off, n);
      std::copy(b, b + n, out_tile(off));
      emit(off, n);
    });
    return finite;
  }
  std::vector<const X*> xs(M);
  if (!any_sparsified_ && !kind_.consensus) {
    // Plain task arithmetic: the same operations in the same order as the general path
    // below (so e.g. dare_linear at density 1 gives the same bits), fused into one loop.
    for_each_tile(0, count, [&](uint64_t off, uint64_t n) {
      const float* b = base_tile(off, n);
      for (size_t k = 0; k < M; ++k) xs[k] = in[models_[k].input] + off;
      ta_accumulate(xs.data(), M, b, w.data(), n, D.data());
      finish_sum(D.data(), n, normalize_, weight_sum_, lambda_, b, out_tile(off));
      emit(off, n);
    });
    return finite;
  }
  // Tie ranks run on through the chunk's blocks (equal_before is exact at a chunk start).
  std::vector<Ranks> ranks(M);
  for (size_t k = 0; k < M; ++k) ranks[k] = block_ranks(models_[k], begin / block_);
  for_each_block(Chunk{begin, count, {}}, block_, [&](uint64_t, uint64_t first, uint64_t cnt) {
    for (uint64_t t = 0; t < cnt; t += unit_) {
      const size_t n = std::min<uint64_t>(unit_, cnt - t);
      const uint64_t off = first - begin + t;
      if constexpr (kBf16) {
        if (band_tile_bf16(first + t, n, off, in, ranks, out16 + off, finite)) continue;
      }
      const float* b = base_tile(off, n);
      // E_k = w_k * delta'_k (delta' = delta * mask * rescale).
      for (size_t k = 0; k < M; ++k) {
        const ModelState& m = models_[k];
        const X* x = in[m.input] + off;
        float* e = E.data() + k * unit_;
        if (m.kept_bits && whole_words(first + t, n)) {
          load_words(m, first + t, n / 64, scratch.words.data());
          bits_delta(x, b, scratch.words.data(), n, m.scale, m.weight, e);
        } else if (m.kept_bits) {
          delta_only(x, b, n, e);
          load_mask(m, first + t, n, mask.data());
          weigh(e, mask.data(), m.scale, m.weight, n);
        } else if (m.sparsified && threshold_only(m, first + t, n, ranks[k])) {
          // The cut is a plain comparison on this tile: one fused loop.
          const TopCut& cut = m.keep_top->cut();
          const bool with_equal = cut_keeps_equal(cut, first + t, n, ranks[k].keep);
          ranks[k].keep += masked_delta(x, b, n, cut.threshold, with_equal, m.scale, m.weight, e);
        } else if (m.sparsified && band_only(m, first + t, n, ranks[k])) {
          // Likewise for breadcrumbs' band between its two cuts.
          const TopCut &keep = m.keep_top->cut(), &drop = m.drop_top->cut();
          const BandCounts c = band_delta(x, b, n, keep.threshold, cut_keeps_equal(keep, first + t, n, ranks[k].keep),
                                          drop.threshold, cut_keeps_equal(drop, first + t, n, ranks[k].drop), m.scale,
                                          m.weight, e);
          ranks[k].keep += c.keep_equal;
          ranks[k].drop += c.drop_equal;
        } else if (m.sparsified) {
          task_vector(x, b, n, e, keys.data());
          compute_mask(m, first + t, e, n, ranks[k], mask.data(), keys.data(), tmp.data());
          weigh(e, mask.data(), m.scale, m.weight, n);
        } else {
          delta_only(x, b, n, e);
          weigh(e, nullptr, 1.0f, m.weight, n);
        }
      }
      float* o = out_tile(off);
      if (kind_.consensus)
        consensus_combine(E.data(), unit_, w.data(), M, n, normalize_, lambda_, b, o, S.data(), D.data(), Z.data());
      else
        sum_combine(E.data(), unit_, M, n, normalize_, weight_sum_, lambda_, b, o, D.data());
      emit(off, n);
    }
  });
  return finite;
}

std::vector<ParamSpec> gta_params(Sparsifier sp, const GtaKind& k) {
  std::vector<ParamSpec> p = {
      model_param("weight", std::nullopt, true),
      model_param("density", 1.0, false, 0.0, 1e300),
      global_param("normalize", k.normalize ? 1.0 : 0.0),
      global_param("rescale", k.rescale ? 1.0 : 0.0),
      global_param("lambda", 1.0),
      global_param("int8_mask", 0.0),
  };
  if (sp == Sparsifier::Outliers) p.push_back(model_param("gamma", 0.01));
  if (sp == Sparsifier::Della) p.push_back(model_param("epsilon", 0.15));
  return p;
}

std::unique_ptr<TensorMerger> create_gta(const TensorJob& job, const GtaKind& kind) {
  require_base(job, kind.name);
  if (non_base_inputs(job).empty()) return make_copy_merger(static_cast<size_t>(job.base));
  return std::make_unique<GtaMerger>(job, kind);
}

#define AMALGAM_GTA(fn, NAME, SP, CONS, NORM, RESC)                                      \
  std::unique_ptr<TensorMerger> create_##fn(const TensorJob& job, std::string_view) {    \
    static const GtaKind kind{NAME, Sparsifier::SP, CONS, NORM, RESC};                    \
    return create_gta(job, kind);                                                         \
  }
AMALGAM_GTA(task_arithmetic, "task_arithmetic", None, false, false, false)
AMALGAM_GTA(ties, "ties", Magnitude, true, true, false)
AMALGAM_GTA(dare_ties, "dare_ties", Random, true, false, true)
AMALGAM_GTA(dare_linear, "dare_linear", Random, false, false, true)
AMALGAM_GTA(breadcrumbs, "breadcrumbs", Outliers, false, false, false)
AMALGAM_GTA(breadcrumbs_ties, "breadcrumbs_ties", Outliers, true, false, false)
AMALGAM_GTA(della, "della", Della, true, true, true)
AMALGAM_GTA(della_linear, "della_linear", Della, false, false, true)
#undef AMALGAM_GTA

}  // namespace

#define AMALGAM_GTA_METHOD(fn, NAME, SP, NORM, RESC)                                     \
  const MergeMethod& method_##fn() {                                                      \
    static const GtaKind k{NAME, Sparsifier::SP, false, NORM, RESC};                      \
    static const SimpleMethod m(NAME, gta_params(Sparsifier::SP, k), BaseRole::Required,  \
                                &create_##fn);                                            \
    return m;                                                                             \
  }
AMALGAM_GTA_METHOD(task_arithmetic, "task_arithmetic", None, false, false)
AMALGAM_GTA_METHOD(ties, "ties", Magnitude, true, false)
AMALGAM_GTA_METHOD(dare_ties, "dare_ties", Random, false, true)
AMALGAM_GTA_METHOD(dare_linear, "dare_linear", Random, false, true)
AMALGAM_GTA_METHOD(breadcrumbs, "breadcrumbs", Outliers, false, false)
AMALGAM_GTA_METHOD(breadcrumbs_ties, "breadcrumbs_ties", Outliers, false, false)
AMALGAM_GTA_METHOD(della, "della", Della, true, true)
AMALGAM_GTA_METHOD(della_linear, "della_linear", Della, false, true)
#undef AMALGAM_GTA_METHOD

}  // namespace amalgam
