// Philox-4x32-10 and the DARE/DELLA keep bits drawn from it. The batched generators run
// 32 counters in lock-step (AVX-512, AVX2, or plain arrays the compiler vectorizes); the
// bits are compared 32 halves at a time with AVX-512BW where the CPU has it.
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

constexpr size_t kLanes = 16;             // counters per portable / AVX2 call
constexpr size_t kBlockCounters = 32;     // counters per block of draws
constexpr size_t kBlock = 8 * kBlockCounters;  // elements (16-bit halves) per block
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

static std::array<uint32_t, 4> philox_counter(uint64_t key, uint32_t model, uint64_t g, uint32_t stream) {
  return philox4x32_10({static_cast<uint32_t>(g), static_cast<uint32_t>(g >> 32), model, stream},
                       {static_cast<uint32_t>(key), static_cast<uint32_t>(key >> 32)});
}

static uint32_t half_of(const std::array<uint32_t, 4>& w, uint64_t element) {
  const unsigned j = static_cast<unsigned>(element & 7);
  return (w[j >> 1] >> (16 * (j & 1))) & 0xffffu;
}

uint32_t philox_draw(uint64_t key, uint32_t model, uint64_t element) {
  const uint64_t g = element >> 3;
  return half_of(philox_counter(key, model, g, 0), element) << 16 | half_of(philox_counter(key, model, g, 1), element);
}

bool philox_keep(uint64_t key, uint32_t model, uint64_t element, double p) {
  // Exact: U < 2^32 and p * 2^32 are both exact doubles.
  return static_cast<double>(philox_draw(key, model, element)) < p * 0x1p32;
}

namespace {
// floor(p * 2^16) clamped to [0, 65535] (NaN: 0). H < it: kept; H > it: dropped; equal:
// philox_keep decides. (p >= 1 gives 65535, and the exact test keeps H == 65535 too.)
uint32_t high_threshold(double p) {
  if (!(p > 0)) return 0;
  if (p >= 1) return 65535;
  return static_cast<uint32_t>(p * 65536.0);
}

// A tensor's keep probability (each == nullptr: `constant` for every element) or one per
// element.
struct Probabilities {
  const float* each = nullptr;
  double constant = 0;
  double at(size_t i) const { return each != nullptr ? static_cast<double>(each[i]) : constant; }
  Probabilities from(size_t i) const { return {each != nullptr ? each + i : nullptr, constant}; }
};

// Counters g0 .. g0 + kLanes - 1 (last word `stream` = 0) into 16-bit halves in element
// order: h[8 l + j] is half j of counter g0 + l. The 32-bit state words live in 64-bit
// lanes so that GCC vectorizes the 32x32->64 multiplies (vpmuludq).
void philox_halves(uint64_t key, uint32_t model, uint64_t g0, uint16_t* h) {
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
    const uint64_t w[4] = {c0[l], c1[l], c2[l], c3[l]};
    for (int j = 0; j < 8; ++j) h[8 * l + j] = static_cast<uint16_t>(w[j >> 1] >> (16 * (j & 1)));
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define AMALGAM_AVX512BW __attribute__((target("avx512f,avx512bw")))

// The same kLanes counters with AVX2 intrinsics: _mm256_mul_epu32 is exactly the
// 32x32->64 multiply Philox needs (GCC synthesizes a full 64-bit multiply from the
// portable loop).
__attribute__((target("avx2"))) void philox_halves_avx2(uint64_t key, uint32_t model, uint64_t g0, uint16_t* h) {
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
  // Transpose to element order in registers (counter l's words 0..3, as 8 halves, at
  // h[8l..8l+7]).
  for (int v = 0; v < V; ++v) {
    __m256i w01 = _mm256_or_si256(c0[v], _mm256_slli_epi64(c1[v], 32));  // lane l: w0 | w1 << 32
    __m256i w23 = _mm256_or_si256(c2[v], _mm256_slli_epi64(c3[v], 32));
    __m256i lo = _mm256_unpacklo_epi64(w01, w23);  // counters 0 | 2
    __m256i hi = _mm256_unpackhi_epi64(w01, w23);  // counters 1 | 3
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(h + 32 * v), _mm256_permute2x128_si256(lo, hi, 0x20));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(h + 32 * v + 16), _mm256_permute2x128_si256(lo, hi, 0x31));
  }
}

// 8 V counters with AVX-512 (8 per vector, V vectors interleaved): twice the
// AVX2 kernel's width on CPUs with full 512-bit units. Same integer operations, so the
// same bits.
// GCC 12's avx512fintrin.h builds its results from _mm512_undefined_*() and warns
// -Wuninitialized about itself when inlined here (a known false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
template <int V>
__attribute__((target("avx512f"))) void philox_halves_avx512(uint64_t key, uint32_t model, uint64_t g0,
                                                             uint16_t* h) {
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
  // Element order: counter l's words 0..3 (8 halves) at h[8l..8l+7].
  const __m512i first = _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0);   // counters 0-3
  const __m512i second = _mm512_set_epi64(15, 7, 14, 6, 13, 5, 12, 4);  // counters 4-7
  for (int v = 0; v < V; ++v) {
    __m512i w01 = _mm512_or_si512(c0[v], _mm512_slli_epi64(c1[v], 32));
    __m512i w23 = _mm512_or_si512(c2[v], _mm512_slli_epi64(c3[v], 32));
    _mm512_storeu_si512(h + 64 * v, _mm512_permutex2var_epi64(w01, first, w23));
    _mm512_storeu_si512(h + 64 * v + 32, _mm512_permutex2var_epi64(w01, second, w23));
  }
}

// The high halves' thresholds of 32 elements from their probabilities, as
// high_threshold does: p * 2^16 (exact), NaN and negatives to 0, capped at 65535,
// truncated.
AMALGAM_AVX512BW inline __m256i thresholds16(const float* p) {
  // max(x, 0) returns its second operand when x is NaN.
  const __m512 x = _mm512_min_ps(
      _mm512_max_ps(_mm512_mul_ps(_mm512_loadu_ps(p), _mm512_set1_ps(65536.0f)), _mm512_setzero_ps()),
      _mm512_set1_ps(65535.0f));
  return _mm512_cvtepi32_epi16(_mm512_cvttps_epi32(x));
}
AMALGAM_AVX512BW inline __m512i thresholds32(const float* p) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(thresholds16(p)), thresholds16(p + 16), 1);
}

// The first 32 * groups halves of a block against their thresholds, as bits OR-ed into
// out (bit j of out[w]: half 64 w + j). Halves equal to their threshold (one in 65536)
// are decided by philox_keep. (Plain arguments: with lambdas returning the threshold
// vectors, GCC 12's ASan+UBSan build gave wrong bits from the second group on, and
// right ones as soon as a debug print was added; not pinned down further.)
AMALGAM_AVX512BW void compare_block_avx512(const uint16_t* h, size_t groups, const Probabilities& p, uint64_t key,
                                           uint32_t model, uint64_t e, uint64_t* out) {
  const __m512i constant = _mm512_set1_epi16(static_cast<short>(high_threshold(p.constant)));
  for (size_t q = 0; q < groups; ++q) {
    const __m512i hv = _mm512_loadu_si512(h + 32 * q);
    const __m512i th = p.each != nullptr ? thresholds32(p.each + 32 * q) : constant;
    uint64_t bits = _mm512_cmplt_epu16_mask(hv, th);
    for (uint32_t eq = _mm512_cmpeq_epu16_mask(hv, th); eq != 0; eq &= eq - 1) {
      const unsigned j = static_cast<unsigned>(__builtin_ctz(eq));
      if (philox_keep(key, model, e + 32 * q + j, p.at(32 * q + j))) bits |= uint64_t{1} << j;
    }
    out[q / 2] |= bits << (32 * (q % 2));
  }
}
#pragma GCC diagnostic pop

bool have_avx2() {
  static const bool v = (__builtin_cpu_init(), __builtin_cpu_supports("avx2"));
  return v;
}
#else
bool have_avx2() { return false; }
#endif

enum class Path { kPortable, kAvx2, kAvx512 };

Path best_path() {
  if (cpu_has_avx512bw()) return Path::kAvx512;
  return have_avx2() ? Path::kAvx2 : Path::kPortable;
}

// The halves of counters g0 .. g0 + kBlockCounters - 1; only the first kLanes of them
// when `counters` <= kLanes (the last 128 elements of a row of 896).
void block_halves(uint64_t key, uint32_t model, uint64_t g0, uint64_t counters, uint16_t* h, Path path) {
  const bool half = counters <= kLanes;
#if defined(__x86_64__) && defined(__GNUC__)
  if (path == Path::kAvx512) {
    if (half) return philox_halves_avx512<kLanes / 8>(key, model, g0, h);
    return philox_halves_avx512<kBlockCounters / 8>(key, model, g0, h);
  }
  if (path == Path::kAvx2) {
    philox_halves_avx2(key, model, g0, h);
    if (!half) philox_halves_avx2(key, model, g0 + kLanes, h + 8 * kLanes);
    return;
  }
#endif
  (void)path;
  philox_halves(key, model, g0, h);
  if (!half) philox_halves(key, model, g0 + kLanes, h + 8 * kLanes);
}

// Keep bits for elements [first, first + n) with probabilities p (element first + i:
// p.at(i)).
void keep_bits(uint64_t key, uint32_t model, uint64_t first, size_t n, const Probabilities& p, uint64_t* out,
               Path path) {
  std::fill(out, out + (n + 63) / 64, uint64_t{0});
  alignas(64) uint16_t h[kBlock];
  const uint64_t end = first + n;
  uint64_t e = first;
  while (e < end) {
    const uint64_t g0 = e >> 3, base = g0 << 3;
    const uint64_t stop = std::min<uint64_t>(end, base + kBlock);
    block_halves(key, model, g0, (stop - base + 7) / 8, h, path);
#if defined(__x86_64__) && defined(__GNUC__)
    // Whole groups of 32 from a word's start (a row of 896 ends in half a block).
    if (path == Path::kAvx512 && base == e && (e - first) % 64 == 0 && stop - e >= 32) {
      const size_t i0 = e - first, groups = (stop - e) / 32;
      compare_block_avx512(h, groups, p.from(i0), key, model, e, out + i0 / 64);
      e += 32 * groups;
    }
#endif
    for (; e < stop; ++e) {
      const size_t i = e - first;
      const double pi = p.at(i);
      const uint32_t hi = h[e - base], t = high_threshold(pi);
      const bool kept = hi != t ? hi < t : philox_keep(key, model, e, pi);
      out[i / 64] |= static_cast<uint64_t>(kept) << (i % 64);
    }
  }
}
}  // namespace

void philox_keep_bits(uint64_t key, uint32_t model, uint64_t first, size_t n, double p, uint64_t* out) {
  keep_bits(key, model, first, n, {nullptr, p}, out, best_path());
}
void philox_keep_bits_v(uint64_t key, uint32_t model, uint64_t first, size_t n, const float* p, uint64_t* out) {
  keep_bits(key, model, first, n, {p, 0}, out, best_path());
}
void philox_keep_bits_portable(uint64_t key, uint32_t model, uint64_t first, size_t n, double p, uint64_t* out) {
  keep_bits(key, model, first, n, {nullptr, p}, out, Path::kPortable);
}
void philox_keep_bits_v_portable(uint64_t key, uint32_t model, uint64_t first, size_t n, const float* p,
                                 uint64_t* out) {
  keep_bits(key, model, first, n, {p, 0}, out, Path::kPortable);
}

}  // namespace amalgam
