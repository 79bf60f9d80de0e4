// Element-wise kernels of the task-arithmetic family (gta.cc): task vectors and their
// magnitude keys, masks as bits, weighting, TIES sign consensus, and DELLA's per-row
// ranks. Plain loops that GCC vectorizes, compiled for AVX2 and the baseline
// (kernels/simd.h). Internal to methods/.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace amalgam::mdetail {

// D = sum_k w_k (x_k - b), in model order.
// Kernels that read model inputs come in two forms, f32 and bf16 bits (the bf16 merge
// path, methods/method.h); both give the same bits.
void ta_accumulate(const float* const* xs, size_t M, const float* b, const float* w, size_t n, float* D);
void ta_accumulate(const uint16_t* const* xs, size_t M, const float* b, const float* w, size_t n, float* D);
// out = b + lambda * (D / z), skipping the steps that are identities exactly as sum_combine.
void finish_sum(float* D, size_t n, bool normalize, float z, float lambda, const float* b, float* out);
void delta_keys(const float* x, const float* b, size_t n, float* d, uint32_t* keys);
void delta_keys(const uint16_t* x, const float* b, size_t n, float* d, uint32_t* keys);
// keys = abs_key(x - b) without storing the deltas (selection passes).
void delta_keys_only(const float* x, const float* b, size_t n, uint32_t* keys);
void delta_keys_only(const uint16_t* x, const uint16_t* b, size_t n, uint32_t* keys);
void delta_only(const float* x, const float* b, size_t n, float* d);
void delta_only(const uint16_t* x, const float* b, size_t n, float* d);
// 0/1 masks as bits, 64 elements a word (bit j of word w = element 64 w + j): the masks
// kept between passes.
void pack_mask_words(const float* mask, size_t words, uint64_t* out);
void unpack_mask_words(const uint64_t* in, size_t words, float* mask);
// The same for any n: mask[i] = bit i % 64 of in[i / 64].
void bits_to_mask(const uint64_t* in, size_t n, float* mask);
// e = w * ((d * mask) * s) with d = x - b and mask the bits (bit j of words[g / 64] for
// element g = 64 w + j): delta_only + unpack_mask_words + weigh in one loop, the same
// bits. n is a multiple of 64.
void bits_delta(const float* x, const float* b, const uint64_t* words, size_t n, float s, float w, float* e);
void bits_delta(const uint16_t* x, const float* b, const uint64_t* words, size_t n, float s, float w, float* e);
// e = w * ((d * mask) * s) with d = x - b and mask = key(d) > t (or >= t when
// with_equal): delta_keys + apply_top_cut + weigh in one loop, the same bits. Returns the
// number of keys == t (the tie-rank counter's advance).
uint64_t masked_delta(const float* x, const float* b, size_t n, uint32_t t, bool with_equal, float s, float w,
                      float* e);
uint64_t masked_delta(const uint16_t* x, const float* b, size_t n, uint32_t t, bool with_equal, float s, float w,
                      float* e);
// Breadcrumbs' mask in the same loop: kept when key >= keep_t (> without keep_equal) and
// not key >= drop_t (> without drop_equal): compute_mask's two apply_top_cut + weigh, the
// same bits. Returns the keys == each threshold (the two tie-rank counters' advance).
struct BandCounts {
  uint64_t keep_equal = 0, drop_equal = 0;
};
BandCounts band_delta(const float* x, const float* b, size_t n, uint32_t keep_t, bool keep_equal, uint32_t drop_t,
                      bool drop_equal, float s, float w, float* e);
BandCounts band_delta(const uint16_t* x, const float* b, size_t n, uint32_t keep_t, bool keep_equal, uint32_t drop_t,
                      bool drop_equal, float s, float w, float* e);
// Breadcrumbs without sign consensus on a bf16 tile, bf16 out, in one loop per element:
// the base, each model's band_delta, sum_combine and f32_to_bf16_finite, with the same
// operations in the same order (so the same bits as those steps; the f32 tiles between
// them were 40% of the merge pass). A model that is not sparsified takes keep_t = 0,
// drop_t = 2^32 - 1 with both *_equal set. Adds each model's tie counts to counts[k];
// returns false when some f32 result was not finite. At most kMaxBandModels models.
struct BandCut {
  uint32_t keep_t = 0, drop_t = 0xffffffffu;
  bool keep_equal = true, drop_equal = true;
  float s = 1.0f, w = 1.0f;
};
inline constexpr size_t kMaxBandModels = 8;
// Elements whose key abs_key(x - b) (bf16 bits both) equals t.
uint64_t count_delta_equal(const uint16_t* x, const uint16_t* b, size_t n, uint32_t t);
bool band_sum_bf16(const uint16_t* const* xs, size_t M, const uint16_t* base, size_t n, const BandCut* cuts,
                   bool normalize, float z, float lambda, uint16_t* out, BandCounts* counts);
// e = w * (e * mask * s) (mask may be null: e = w * e).
void weigh(float* e, const float* mask, float s, float w, size_t n);
// TIES consensus over M weighted deltas E (row stride `stride`), normalize, lambda, + base.
void consensus_combine(const float* E, size_t stride, const float* w, size_t M, size_t n, bool normalize,
                       float lambda, const float* base, float* out, float* S, float* D, float* Z);
// Without consensus: D = sum_k E_k (/ z), lambda, + base.
void sum_combine(const float* E, size_t stride, size_t M, size_t n, bool normalize, float z, float lambda,
                 const float* base, float* out, float* D);

struct RankScratch {
  std::vector<uint64_t> items;   // (key << 32 | position), sorted
  std::vector<uint32_t> packed;  // rows of <= 2^14 keys: (key >> shift) << pb | position
};
// rank[pos] = ascending 0-based rank of keys[pos] among the C keys (ties: lower pos first),
// by a 64-bit sort of (key << 32 | position): the reference for rank_lookup.
void rank_keys(const uint32_t* keys, size_t C, uint32_t* rank, RankScratch& s);
// out[pos * stride] = table[rank of keys[pos]] (the same ranks as rank_keys). Keys are
// abs_key() patterns (< 2^31): the packed sort of short rows drops as many of their low
// bits as the row's largest key needs to fit beside the position bits.
void rank_lookup(const uint32_t* keys, size_t C, const float* table, float* out, size_t stride, RankScratch& s);
// rank_lookup for `rows` consecutive rows of C keys each (stride 1).
void rank_lookup_rows(const uint32_t* keys, size_t rows, size_t C, const float* table, float* out,
                      RankScratch& s);

}  // namespace amalgam::mdetail
