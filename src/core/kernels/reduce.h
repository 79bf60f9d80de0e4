// Deterministic f64 reductions over f32 spans (METHODS.md §8.1: norms, dots and L1 sums
// accumulate in f64). The summation order depends only on n, so a reduction block that
// is walked in the same tiles always gives the same bits.
#pragma once
#include <cstddef>

namespace amalgam {

double sum_abs_f64(const float* x, size_t n);
// sum |x| and sum |x * mask| (mask 0/1) in one sweep, each with sum_abs_f64's lanes
// and order (so the same bits as sum_abs_f64 of x, and of x after the mask).
void sum_abs_pair_f64(const float* x, const float* mask, size_t n, double* all, double* kept);
double dot_f64(const float* a, const float* b, size_t n);
double sum_sq_f64(const float* x, size_t n);

}  // namespace amalgam
