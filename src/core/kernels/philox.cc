// Philox-4x32-10. The batched generator runs kLanes counters in lock-step over plain
// arrays so the compiler vectorizes the 32x32->64 multiplies (vpmuludq).
#include "kernels/philox.h"

#include <algorithm>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "kernels/simd.h"

namespace amalgam {
namespace {
constexpr uint64_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
constexpr uint64_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;

uint64_t splitmix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

constexpr size_t kLanes = 16;
}  // namespace

std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  for (int r = 0; r < 10; ++r) {
    uint64_t p0 = static_cast<uint64_t>(kM0) * c[0];
    uint64_t p1 = static_cast<uint64_t>(kM1) * c[2];
    uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    c = {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
    k[0] += kW0;
    k[1] += kW1;
  }
  return c;
}

uint64_t hash_name(std::string_view name) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : name) {
    h ^= ch;
    h *= 0x100000001b3ull;
  }
  return splitmix64(h);
}

uint64_t philox_tensor_key(uint64_t seed, std::string_view tensor_name) {
  return splitmix64(seed ^ splitmix64(hash_name(tensor_name) + 0x5851F42D4C957F2Dull));
}

float philox_uniform(uint64_t key, uint32_t model, uint64_t element) {
  uint64_t g = element >> 2;
  auto r = philox4x32_10({static_cast<uint32_t>(g), static_cast<uint32_t>(g >> 32), model, 0},
                         {static_cast<uint32_t>(key), static_cast<uint32_t>(key >> 32)});
  return static_cast<float>(r[element & 3] >> 8) * 0x1p-24f;
}

// Generates kLanes consecutive groups (4 words each) starting at group g0 into out[4*kLanes].
// The 32-bit state words live in 64-bit lanes so that GCC vectorizes the 32x32->64
// multiplies (vpmuludq); masks keep every word at 32 bits.
static void philox_groups(uint64_t key, uint32_t model, uint64_t g0, float* out) {
  constexpr uint64_t kLow = 0xffffffffu;
  uint64_t c0[kLanes], c1[kLanes], c2[kLanes], c3[kLanes];
  for (size_t l = 0; l < kLanes; ++l) {
    uint64_t g = g0 + l;
    c0[l] = g & kLow;
    c1[l] = g >> 32;
    c2[l] = model;
    c3[l] = 0;
  }
  uint64_t k0 = key & kLow, k1 = key >> 32;
  for (int r = 0; r < 10; ++r) {
    for (size_t l = 0; l < kLanes; ++l) {
      uint64_t p0 = kM0 * (c0[l] & kLow);
      uint64_t p1 = kM1 * (c2[l] & kLow);
      uint64_t n0 = ((p1 >> 32) ^ c1[l] ^ k0) & kLow;
      uint64_t n2 = ((p0 >> 32) ^ c3[l] ^ k1) & kLow;
      c1[l] = p1 & kLow;
      c3[l] = p0 & kLow;
      c0[l] = n0;
      c2[l] = n2;
    }
    k0 = (k0 + kW0) & kLow;
    k1 = (k1 + kW1) & kLow;
  }
  for (size_t l = 0; l < kLanes; ++l) {
    out[4 * l + 0] = static_cast<float>(static_cast<uint32_t>(c0[l]) >> 8) * 0x1p-24f;
    out[4 * l + 1] = static_cast<float>(static_cast<uint32_t>(c1[l]) >> 8) * 0x1p-24f;
    out[4 * l + 2] = static_cast<float>(static_cast<uint32_t>(c2[l]) >> 8) * 0x1p-24f;
    out[4 * l + 3] = static_cast<float>(static_cast<uint32_t>(c3[l]) >> 8) * 0x1p-24f;
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
// The same 16 groups with AVX2 intrinsics: _mm256_mul_epu32 is exactly the 32x32->64
// multiply Philox needs (GCC synthesizes a full 64-bit multiply from the portable loop).
__attribute__((target("avx2"))) static void philox_groups_avx2(uint64_t key, uint32_t model, uint64_t g0,
                                                                float* out) {
  constexpr int V = kLanes / 4;  // independent vectors, interleaved to hide multiply latency
  const __m256i low = _mm256_set1_epi64x(0xffffffffll);
  const __m256i m0 = _mm256_set1_epi64x(static_cast<long long>(kM0));
  const __m256i m1 = _mm256_set1_epi64x(static_cast<long long>(kM1));
  __m256i c0[V], c1[V], c2[V], c3[V];
  for (int v = 0; v < V; ++v) {
    __m256i gv = _mm256_add_epi64(_mm256_set1_epi64x(static_cast<long long>(g0 + 4 * v)),
                                  _mm256_set_epi64x(3, 2, 1, 0));
    c0[v] = _mm256_and_si256(gv, low);
    c1[v] = _mm256_srli_epi64(gv, 32);
    c2[v] = _mm256_set1_epi64x(model);
    c3[v] = _mm256_setzero_si256();
  }
  uint64_t k0 = key & 0xffffffffu, k1 = key >> 32;
  for (int r = 0; r < 10; ++r) {
    const __m256i kv0 = _mm256_set1_epi64x(static_cast<long long>(k0));
    const __m256i kv1 = _mm256_set1_epi64x(static_cast<long long>(k1));
    for (int v = 0; v < V; ++v) {
      __m256i p0 = _mm256_mul_epu32(c0[v], m0);
      __m256i p1 = _mm256_mul_epu32(c2[v], m1);
      __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p1, 32), c1[v]), kv0);
      __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p0, 32), c3[v]), kv1);
      c1[v] = _mm256_and_si256(p1, low);
      c3[v] = _mm256_and_si256(p0, low);
      c0[v] = n0;
      c2[v] = n2;
    }
    k0 = (k0 + kW0) & 0xffffffffu;
    k1 = (k1 + kW1) & 0xffffffffu;
  }
  // Transpose to element order (counter l's words 0..3 at out[4l..4l+3]) in registers and
  // convert 8 at a time: (w >> 8) < 2^24 converts exactly, the scale is a power of two,
  // so the bits equal the scalar path's. (A scalar store/reload here was ~40% of the
  // kernel, and Philox was 45% of a dare_ties merge.)
  const __m256 scale = _mm256_set1_ps(0x1p-24f);
  for (int v = 0; v < V; ++v) {
    __m256i w01 = _mm256_or_si256(c0[v], _mm256_slli_epi64(c1[v], 32));  // lane l: w0 | w1 << 32
    __m256i w23 = _mm256_or_si256(c2[v], _mm256_slli_epi64(c3[v], 32));
    __m256i lo = _mm256_unpacklo_epi64(w01, w23);  // counters 0 | 2
    __m256i hi = _mm256_unpackhi_epi64(w01, w23);  // counters 1 | 3
    __m256i a = _mm256_permute2x128_si256(lo, hi, 0x20);  // counters 0, 1
    __m256i b = _mm256_permute2x128_si256(lo, hi, 0x31);  // counters 2, 3
    _mm256_storeu_ps(out + 16 * v, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(a, 8)), scale));
    _mm256_storeu_ps(out + 16 * v + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(b, 8)), scale));
  }
}

// 2 * kLanes groups with AVX-512 (8 counters per vector, 4 vectors interleaved): twice the
// AVX2 kernel's width on CPUs with full 512-bit units. Same integer operations, so the
// same bits.
constexpr size_t kWideGroups = 2 * kLanes;
// GCC 12's avx512fintrin.h builds its results from _mm512_undefined_*() and warns
// -Wuninitialized about itself when inlined here (a known false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f"))) static void philox_groups_avx512(uint64_t key, uint32_t model, uint64_t g0,
                                                                    float* out) {
  constexpr int V = kWideGroups / 8;
  const __m512i low = _mm512_set1_epi64(0xffffffffll);
  const __m512i m0 = _mm512_set1_epi64(static_cast<long long>(kM0));
  const __m512i m1 = _mm512_set1_epi64(static_cast<long long>(kM1));
  __m512i c0[V], c1[V], c2[V], c3[V];
  for (int v = 0; v < V; ++v) {
    __m512i gv = _mm512_add_epi64(_mm512_set1_epi64(static_cast<long long>(g0 + 8 * v)),
                                  _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0));
    c0[v] = _mm512_and_si512(gv, low);
    c1[v] = _mm512_srli_epi64(gv, 32);
    c2[v] = _mm512_set1_epi64(model);
    c3[v] = _mm512_setzero_si512();
  }
  uint64_t k0 = key & 0xffffffffu, k1 = key >> 32;
  for (int r = 0; r < 10; ++r) {
    const __m512i kv0 = _mm512_set1_epi64(static_cast<long long>(k0));
    const __m512i kv1 = _mm512_set1_epi64(static_cast<long long>(k1));
    for (int v = 0; v < V; ++v) {
      __m512i p0 = _mm512_mul_epu32(c0[v], m0);
      __m512i p1 = _mm512_mul_epu32(c2[v], m1);
      __m512i n0 = _mm512_xor_si512(_mm512_xor_si512(_mm512_srli_epi64(p1, 32), c1[v]), kv0);
      __m512i n2 = _mm512_xor_si512(_mm512_xor_si512(_mm512_srli_epi64(p0, 32), c3[v]), kv1);
      c1[v] = _mm512_and_si512(p1, low);
      c3[v] = _mm512_and_si512(p0, low);
      c0[v] = n0;
      c2[v] = n2;
    }
    k0 = (k0 + kW0) & 0xffffffffu;
    k1 = (k1 + kW1) & 0xffffffffu;
  }
  // Element order: counter l's words 0..3 at out[4l..4l+3].
  const __m512 scale = _mm512_set1_ps(0x1p-24f);
  const __m512i first = _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0);  // counters 0-3
  const __m512i second = _mm512_set_epi64(15, 7, 14, 6, 13, 5, 12, 4);  // counters 4-7
  for (int v = 0; v < V; ++v) {
    __m512i w01 = _mm512_or_si512(c0[v], _mm512_slli_epi64(c1[v], 32));
    __m512i w23 = _mm512_or_si512(c2[v], _mm512_slli_epi64(c3[v], 32));
    __m512i a = _mm512_permutex2var_epi64(w01, first, w23);
    __m512i b = _mm512_permutex2var_epi64(w01, second, w23);
    _mm512_storeu_ps(out + 32 * v, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(a, 8)), scale));
    _mm512_storeu_ps(out + 32 * v + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(b, 8)), scale));
  }
}
#pragma GCC diagnostic pop

static bool have_avx2() {
  static const bool v = (__builtin_cpu_init(), __builtin_cpu_supports("avx2"));
  return v;
}
#define AMALGAM_PHILOX_GROUPS(...) (avx2 ? philox_groups_avx2(__VA_ARGS__) : philox_groups(__VA_ARGS__))
#else
static bool have_avx2() { return false; }
#define AMALGAM_PHILOX_GROUPS(...) ((void)avx2, philox_groups(__VA_ARGS__))
#endif

static void uniforms_impl(uint64_t key, uint32_t model, uint64_t first, size_t n, float* out, bool avx2,
                          bool avx512) {
  float buf[4 * kLanes];
  uint64_t e = first, end = first + n;
  while (e < end) {
    uint64_t g0 = e >> 2;
    uint64_t base = g0 << 2;
#if defined(__x86_64__) && defined(__GNUC__)
    if (avx512 && (e & 3) == 0 && end - e >= 4 * kWideGroups) {
      philox_groups_avx512(key, model, g0, out + (e - first));
      e += 4 * kWideGroups;
      continue;
    }
#else
    (void)avx512;
#endif
    if ((e & 3) == 0 && end - e >= 4 * kLanes) {
      AMALGAM_PHILOX_GROUPS(key, model, g0, out + (e - first));
      e += 4 * kLanes;
      continue;
    }
    AMALGAM_PHILOX_GROUPS(key, model, g0, buf);
    uint64_t stop = std::min(end, base + 4 * kLanes);
    for (uint64_t i = e; i < stop; ++i) out[i - first] = buf[i - base];
    e = stop;
  }
}

void philox_uniforms(uint64_t key, uint32_t model, uint64_t first, size_t n, float* out) {
  uniforms_impl(key, model, first, n, out, have_avx2(), cpu_has_avx512f());
}

void philox_uniforms_portable(uint64_t key, uint32_t model, uint64_t first, size_t n, float* out) {
  uniforms_impl(key, model, first, n, out, false, false);
}

}  // namespace amalgam
