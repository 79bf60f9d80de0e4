// Element-wise kernels of the task-arithmetic family: see gta_kernels.h.
#include "methods/gta_kernels.h"

#include <algorithm>

#include "kernels/radix_select.h"
#include "kernels/simd.h"

namespace amalgam::mdetail {

// D = sum_k w_k (x_k - b), in model order (E_0 first, as sum_combine adds them).
AMALGAM_SIMD_CLONES void ta_accumulate(const float* const* xs, size_t M, const float* __restrict b,
                                       const float* __restrict w, size_t n, float* __restrict D) {
  {
    const float* __restrict x = xs[0];
    const float w0 = w[0];
    for (size_t i = 0; i < n; ++i) D[i] = w0 * (x[i] - b[i]);
  }
  for (size_t k = 1; k < M; ++k) {
    const float* __restrict x = xs[k];
    const float wk = w[k];
    for (size_t i = 0; i < n; ++i) D[i] += wk * (x[i] - b[i]);
  }
}

// out = b + lambda * (D / z) with the optional steps skipped exactly as sum_combine does.
AMALGAM_SIMD_CLONES void finish_sum(float* __restrict D, size_t n, bool normalize, float z, float lambda,
                                    const float* __restrict b, float* __restrict out) {
  if (normalize)
    for (size_t i = 0; i < n; ++i) D[i] /= z;
  if (lambda != 1.0f)
    for (size_t i = 0; i < n; ++i) D[i] *= lambda;
  for (size_t i = 0; i < n; ++i) out[i] = b[i] + D[i];
}


AMALGAM_SIMD_CLONES void delta_keys(const float* x, const float* b, size_t n, float* d, uint32_t* keys) {
  for (size_t i = 0; i < n; ++i) {
    d[i] = x[i] - b[i];
    keys[i] = abs_key(d[i]);
  }
}

AMALGAM_SIMD_CLONES void delta_only(const float* x, const float* b, size_t n, float* d) {
  for (size_t i = 0; i < n; ++i) d[i] = x[i] - b[i];
}

AMALGAM_SIMD_CLONES void bernoulli_mask(const float* u, float p, size_t n, float* mask) {
  for (size_t i = 0; i < n; ++i) mask[i] = u[i] < p ? 1.0f : 0.0f;
}

AMALGAM_SIMD_CLONES void bernoulli_mask_v(const float* u, const float* p, size_t n, float* mask) {
  for (size_t i = 0; i < n; ++i) mask[i] = u[i] < p[i] ? 1.0f : 0.0f;
}

// e = w * (d * mask * s): mergekit's E_i = w_i * delta'_i.
AMALGAM_SIMD_CLONES void weigh(float* __restrict e, const float* __restrict mask, float s, float w, size_t n) {
  if (mask)
    for (size_t i = 0; i < n; ++i) e[i] = w * (e[i] * mask[i] * s);
  else
    for (size_t i = 0; i < n; ++i) e[i] = w * e[i];
}

// TIES sign consensus over M weighted deltas (stride `stride`), then normalize, lambda and
// out = base + D. Zero entries never vote; S == 0 elects +.
AMALGAM_SIMD_CLONES void consensus_combine(const float* __restrict E, size_t stride, const float* __restrict w,
                                           size_t M, size_t n, bool normalize, float lambda,
                                           const float* __restrict base, float* __restrict out,
                                           float* __restrict S, float* __restrict D, float* __restrict Z) {
  for (size_t i = 0; i < n; ++i) S[i] = E[i];
  for (size_t k = 1; k < M; ++k)
    for (size_t i = 0; i < n; ++i) S[i] += E[k * stride + i];
  // S becomes the elected sign (+1 / -1); e agrees iff e * sign > 0 (so e == 0 never does).
  for (size_t i = 0; i < n; ++i) {
    S[i] = S[i] >= 0.0f ? 1.0f : -1.0f;
    D[i] = 0.0f;
    Z[i] = 0.0f;
  }
  for (size_t k = 0; k < M; ++k) {
    const float* e = E + k * stride;
    const float wk = w[k];
    // Written as selects between computed values so that GCC vectorizes it under
    // -ftrapping-math.
    for (size_t i = 0; i < n; ++i) {
      const float ei = e[i];
      const float t = ei * S[i];
      const float de = t > 0.0f ? ei : 0.0f;
      const float dz = t > 0.0f ? wk : 0.0f;
      D[i] = D[i] + de;
      Z[i] = Z[i] + dz;
    }
  }
  if (normalize)
    for (size_t i = 0; i < n; ++i) {
      const float z = Z[i];
      const float fix = z == 0.0f ? 1.0f : 0.0f;  // Z exactly 0 -> 1 (z + 0 == z otherwise)
      D[i] = D[i] / (z + fix);
    }
  if (lambda != 1.0f)
    for (size_t i = 0; i < n; ++i) D[i] *= lambda;
  for (size_t i = 0; i < n; ++i) out[i] = base[i] + D[i];
}

// Without consensus: D = sum_k E_k (/ Z), lambda, out = base + D.
AMALGAM_SIMD_CLONES void sum_combine(const float* __restrict E, size_t stride, size_t M, size_t n, bool normalize,
                                     float z, float lambda, const float* __restrict base, float* __restrict out,
                                     float* __restrict D) {
  for (size_t i = 0; i < n; ++i) D[i] = E[i];
  for (size_t k = 1; k < M; ++k)
    for (size_t i = 0; i < n; ++i) D[i] += E[k * stride + i];
  if (normalize)
    for (size_t i = 0; i < n; ++i) D[i] /= z;
  if (lambda != 1.0f)
    for (size_t i = 0; i < n; ++i) D[i] *= lambda;
  for (size_t i = 0; i < n; ++i) out[i] = base[i] + D[i];
}

// Ascending ranks (ties by lower position, §8.4) of C keys: stable LSD radix sort over
// 11/11/9-bit digits of the 31-bit keys, with the three histograms built in one pass.
// rank[pos] = 0-based rank.
void rank_keys(const uint32_t* keys, size_t C, uint32_t* rank, RankScratch& s) {
  s.ka.assign(keys, keys + C);
  s.ia.resize(C);
  for (size_t i = 0; i < C; ++i) s.ia[i] = static_cast<uint32_t>(i);
  if (C <= 32) {
    std::stable_sort(s.ia.begin(), s.ia.end(), [&](uint32_t x, uint32_t y) { return keys[x] < keys[y]; });
  } else {
    s.kb.resize(C);
    s.ib.resize(C);
    static thread_local uint32_t hist[3][2048];
    std::fill(&hist[0][0], &hist[0][0] + 3 * 2048, 0u);
    for (size_t i = 0; i < C; ++i) {
      const uint32_t k = s.ka[i];
      ++hist[0][k & 2047u];
      ++hist[1][(k >> 11) & 2047u];
      ++hist[2][(k >> 22) & 511u];
    }
    const int shifts[3] = {0, 11, 22};
    const uint32_t masks[3] = {2047u, 2047u, 511u};
    for (int d = 0; d < 3; ++d) {
      uint32_t* h = hist[d];
      const uint32_t dm = masks[d];
      const int sh = shifts[d];
      if (h[(s.ka[0] >> sh) & dm] == C) continue;  // one digit value: order unchanged
      uint32_t sum = 0;
      for (uint32_t v = 0; v <= dm; ++v) {
        const uint32_t c = h[v];
        h[v] = sum;
        sum += c;
      }
      for (size_t i = 0; i < C; ++i) {
        const uint32_t k = s.ka[i];
        const uint32_t pos = h[(k >> sh) & dm]++;
        s.kb[pos] = k;
        s.ib[pos] = s.ia[i];
      }
      s.ka.swap(s.kb);
      s.ia.swap(s.ib);
    }
  }
  for (size_t r = 0; r < C; ++r) rank[s.ia[r]] = static_cast<uint32_t>(r);
}

}  // namespace amalgam::mdetail
