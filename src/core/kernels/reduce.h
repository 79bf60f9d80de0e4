// Deterministic f64 reductions over f32 spans (METHODS.md §8.1: norms, dots and L1 sums
// accumulate in f64). The summation order depends only on n, so a reduction block that
// is walked in the same tiles always gives the same bits.
#pragma once
#include <cstddef>
#include <cstdint>

namespace amalgam {

double sum_abs_f64(const float* x, size_t n);
// sum |x| and sum |x * mask| (mask 0/1) in one sweep, each with sum_abs_f64's lanes
// and order (so the same bits as sum_abs_f64 of x, and of x after the mask).
void sum_abs_pair_f64(const float* x, const float* mask, size_t n, double* all, double* kept);
// sum_abs_pair_f64 of d = x - b (f32, or bf16 bits widened: d as delta_only computes
// it) with the mask as bits (bit i % 64 of bits[i / 64]): the same bits, d not stored.
void sum_abs_delta_bits_f64(const float* x, const float* b, const uint64_t* bits, size_t n, double* all,
                            double* kept);
void sum_abs_delta_bits_f64(const uint16_t* x, const float* b, const uint64_t* bits, size_t n, double* all,
                            double* kept);
double dot_f64(const float* a, const float* b, size_t n);
double sum_sq_f64(const float* x, size_t n);

}  // namespace amalgam
