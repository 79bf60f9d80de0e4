// Element conversion kernels. The hot paths (bf16/f16 <-> f32, which every merge of a
// half-precision checkpoint goes through) are branchless integer code that GCC
// vectorizes; target_clones compiles them for AVX-512, AVX2 and baseline x86-64 and picks
// one at load time, so a generic -O3 build still runs wide on the machine it lands on.
// Everything else is a simple scalar loop or a 256-entry table (8-bit floats).
#include "kernels/convert.h"

#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

namespace amalgam {
namespace {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define AMALGAM_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define AMALGAM_CLONES
#endif

// ---- generic small-float codec: E exponent bits, M mantissa bits -------------------
// `fn` = the "finite" OCP variant (e4m3fn): no Inf, only S.1111.111 is NaN.
struct SmallFloat {
  int E, M;
  bool fn;
  constexpr int bias() const { return (1 << (E - 1)) - 1; }
  constexpr uint32_t exp_max() const { return (1u << E) - 1; }
  constexpr uint32_t sign_bit() const { return 1u << (E + M); }
  constexpr uint32_t abs_mask() const { return sign_bit() - 1; }
  // Largest finite magnitude code.
  constexpr uint32_t max_finite() const {
    return fn ? abs_mask() - 1 : ((exp_max() - 1) << M) | ((1u << M) - 1);
  }
  constexpr uint32_t inf_code() const { return exp_max() << M; }         // !fn only
  constexpr uint32_t qnan_code() const { return fn ? abs_mask() : (exp_max() << M) | (1u << (M - 1)); }
};

constexpr SmallFloat kF16{5, 10, false};
constexpr SmallFloat kE4M3{4, 3, true};
constexpr SmallFloat kE5M2{5, 2, false};

constexpr float decode(SmallFloat t, uint32_t b) {
  const uint32_t sign = (b & t.sign_bit()) ? 0x80000000u : 0u;
  const uint32_t exp = (b >> t.M) & t.exp_max();
  uint32_t mant = b & ((1u << t.M) - 1);
  uint32_t out;
  if (t.fn ? (b & t.abs_mask()) == t.abs_mask() : exp == t.exp_max()) {
    // Inf (mantissa 0) or NaN; NaN payload bits are carried into the top of f32's mantissa.
    if (t.fn) out = 0x7fc00000u;
    else out = 0x7f800000u | (mant << (23 - t.M));
  } else if (exp == 0) {
    if (mant == 0) {
      out = 0;
    } else {  // subnormal: normalize into an f32 normal
      int e = 1 - t.bias();
      while (!(mant & (1u << t.M))) {
        mant <<= 1;
        --e;
      }
      mant &= (1u << t.M) - 1;
      out = (static_cast<uint32_t>(e + 127) << 23) | (mant << (23 - t.M));
    }
  } else {
    out = ((exp - t.bias() + 127) << 23) | (mant << (23 - t.M));
  }
  return std::bit_cast<float>(out | sign);
}

// Round-to-nearest-even of an f32 into the small format; overflow -> Inf (or NaN for fn).
constexpr uint32_t encode(SmallFloat t, float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (u >> 31) ? t.sign_bit() : 0u;
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) {  // NaN: quiet it, keep the sign and the top payload bits
    if (t.fn) return sign | t.qnan_code();
    return sign | t.qnan_code() | ((a >> (23 - t.M)) & ((1u << (t.M - 1)) - 1u));
  }
  if (a == 0x7f800000u) return sign | (t.fn ? t.qnan_code() : t.inf_code());
  const int e = static_cast<int>(a >> 23) - 127;
  const int emin = 1 - t.bias();
  const int shift_norm = 23 - t.M;
  uint32_t r;
  if (e >= emin) {
    // Rebias the exponent in place; the rounding carry then propagates into it for free.
    uint32_t adj = a - (static_cast<uint32_t>(127 - t.bias()) << 23);
    uint32_t lsb = (adj >> shift_norm) & 1u;
    adj += (1u << (shift_norm - 1)) - 1u + lsb;
    r = adj >> shift_norm;
    // Codes past the exponent field (or into the fn NaN slot) mean overflow.
    if (r > t.max_finite()) r = t.fn ? t.qnan_code() : t.inf_code();
  } else {
    // Target subnormal: value in units of the smallest subnormal is m * 2^-shift.
    if (a < 0x00800000u) return sign;  // f32 subnormals are far below any target subnormal
    const uint32_t m = (a & 0x7fffffu) | 0x800000u;
    const int shift = shift_norm + emin - e;  // > shift_norm
    if (shift > 25) return sign;               // < half the smallest subnormal
    const uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    r = q + ((rem > half || (rem == half && (q & 1u))) ? 1u : 0u);
  }
  return sign | r;
}

template <SmallFloat T>
constexpr std::array<float, 256> make_table() {
  std::array<float, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) t[i] = decode(T, i);
  return t;
}
constexpr std::array<float, 256> kE4M3Table = make_table<kE4M3>();
constexpr std::array<float, 256> kE5M2Table = make_table<kE5M2>();

// ---- hot loops ----------------------------------------------------------------------

AMALGAM_CLONES void bf16_to_f32_loop(const uint16_t* __restrict src, float* __restrict dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = std::bit_cast<float>(static_cast<uint32_t>(src[i]) << 16);
}

AMALGAM_CLONES void f32_to_bf16_loop(const float* __restrict src, uint16_t* __restrict dst, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const uint32_t u = std::bit_cast<uint32_t>(src[i]);
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    const uint32_t nan = (u >> 16) | 0x40u;  // quiet the NaN, keep sign and top payload
    dst[i] = static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
  }
}

// f16 -> f32 without branches: move exponent/mantissa into place, rebias, then fix up
// Inf/NaN (exponent 31) and subnormals (exponent 0, renormalized by an exact float
// subtraction).
AMALGAM_CLONES void f16_to_f32_generic(const uint16_t* __restrict src, float* __restrict dst, size_t n) {
  constexpr uint32_t kExpMask = 0x7c00u << 13;
  constexpr float kMagic = std::bit_cast<float>(113u << 23);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t h = src[i];
    uint32_t o = (h & 0x7fffu) << 13;
    const uint32_t exp = o & kExpMask;
    o += (127u - 15u) << 23;
    const uint32_t inf_nan = o + ((128u - 16u) << 23);
    const float sub = std::bit_cast<float>(o + (1u << 23)) - kMagic;
    o = exp == kExpMask ? inf_nan : (exp == 0 ? std::bit_cast<uint32_t>(sub) : o);
    dst[i] = std::bit_cast<float>(o | ((h & 0x8000u) << 16));
  }
}

// f32 -> f16 round-to-nearest-even, branchless. Results below the f16 normal range come
// from adding a magic constant so the FPU's own RNE does the subnormal rounding.
AMALGAM_CLONES void f32_to_f16_generic(const float* __restrict src, uint16_t* __restrict dst, size_t n) {
  constexpr uint32_t kF32Inf = 255u << 23;
  constexpr uint32_t kF16Max = (127u + 16u) << 23;  // first f32 that overflows f16 after rounding
  constexpr uint32_t kDenormMagicU = ((127u - 15u) + (23u - 10u) + 1u) << 23;
  constexpr float kDenormMagic = std::bit_cast<float>(kDenormMagicU);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t u = std::bit_cast<uint32_t>(src[i]);
    const uint32_t sign = (u >> 16) & 0x8000u;
    const uint32_t a = u & 0x7fffffffu;
    const uint32_t special = a > kF32Inf ? (0x7e00u | ((a >> 13) & 0x1ffu)) : 0x7c00u;
    const uint32_t denorm = std::bit_cast<uint32_t>(std::bit_cast<float>(a) + kDenormMagic) - kDenormMagicU;
    const uint32_t normal = (a + ((15u - 127u) << 23) + 0xfffu + ((a >> 13) & 1u)) >> 13;
    const uint32_t r = a >= kF16Max ? special : (a < (113u << 23) ? denorm : normal);
    dst[i] = static_cast<uint16_t>(r | sign);
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
// F16C converts 8 halves per instruction, exactly (f16 -> f32) and with the MXCSR-free
// round-to-nearest-even immediate (f32 -> f16); NaNs come out quiet with sign and top
// payload bits, as in the generic code. GCC does not vectorize the generic f16 loops for
// AVX2, so this is the fast path on every x86-64-v3 or newer CPU.
__attribute__((target("avx2,f16c"))) void f16_to_f32_f16c(const uint16_t* src, float* dst, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    __m256 f = _mm256_cvtph_ps(h);
    const __m256 nan = _mm256_cmp_ps(f, f, _CMP_UNORD_Q);
    if (_mm256_movemask_ps(nan)) {
      // vcvtph2ps quiets signalling NaNs; keep the payload bit-exact like the generic code.
      const __m256i h32 = _mm256_cvtepu16_epi32(h);
      const __m256i sign = _mm256_slli_epi32(_mm256_and_si256(h32, _mm256_set1_epi32(0x8000)), 16);
      const __m256i mant = _mm256_slli_epi32(_mm256_and_si256(h32, _mm256_set1_epi32(0x3ff)), 13);
      const __m256i bits = _mm256_or_si256(_mm256_or_si256(sign, mant), _mm256_set1_epi32(0x7f800000));
      f = _mm256_blendv_ps(f, _mm256_castsi256_ps(bits), nan);
    }
    _mm256_storeu_ps(dst + i, f);
  }
  if (i < n) f16_to_f32_generic(src + i, dst + i, n - i);
}
__attribute__((target("avx2,f16c"))) void f32_to_f16_f16c(const float* src, uint16_t* dst, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), h);
  }
  if (i < n) f32_to_f16_generic(src + i, dst + i, n - i);
}
bool has_f16c() {
  static const bool yes = [] {
    __builtin_cpu_init();  // may run before libgcc's own constructor
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
  }();
  return yes;
}
#endif

void f16_to_f32_loop(const uint16_t* src, float* dst, size_t n) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (has_f16c()) return f16_to_f32_f16c(src, dst, n);
#endif
  f16_to_f32_generic(src, dst, n);
}
void f32_to_f16_loop(const float* src, uint16_t* dst, size_t n) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (has_f16c()) return f32_to_f16_f16c(src, dst, n);
#endif
  f32_to_f16_generic(src, dst, n);
}

template <typename Int>
void int_to_f32(const void* src, float* dst, size_t n) {
  const Int* s = static_cast<const Int*>(src);
  for (size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(s[i]);
}

// Round half to even, clamp to the range, NaN -> 0: a defined result for every input.
template <typename Int>
void f32_to_int(const float* src, void* dst, size_t n) {
  Int* d = static_cast<Int*>(dst);
  constexpr double lo = static_cast<double>(std::numeric_limits<Int>::min());
  constexpr double hi = static_cast<double>(std::numeric_limits<Int>::max());
  for (size_t i = 0; i < n; ++i) {
    const float f = src[i];
    if (std::isnan(f)) {
      d[i] = 0;
      continue;
    }
    const double r = std::nearbyint(static_cast<double>(f));
    if (r <= lo) d[i] = std::numeric_limits<Int>::min();
    else if (r >= hi) d[i] = std::numeric_limits<Int>::max();
    else d[i] = static_cast<Int>(r);
  }
}

}  // namespace

float bf16_to_f32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }
uint16_t f32_to_bf16(float f) {
  uint16_t r;
  f32_to_bf16_loop(&f, &r, 1);
  return r;
}
float f16_to_f32(uint16_t h) { return decode(kF16, h); }
uint16_t f32_to_f16(float f) { return static_cast<uint16_t>(encode(kF16, f)); }
float f8e4m3_to_f32(uint8_t b) { return kE4M3Table[b]; }
uint8_t f32_to_f8e4m3(float f) { return static_cast<uint8_t>(encode(kE4M3, f)); }
float f8e5m2_to_f32(uint8_t b) { return kE5M2Table[b]; }
uint8_t f32_to_f8e5m2(float f) { return static_cast<uint8_t>(encode(kE5M2, f)); }

// Inf/NaN have all exponent bits set: adding one exponent step then carries into bit 31.
// Integer and/add/or only, so the loop vectorizes (a compare per element did not).
AMALGAM_CLONES bool any_nonfinite(const float* x, size_t n) {
  uint32_t acc = 0;
  for (size_t i = 0; i < n; ++i) acc |= (std::bit_cast<uint32_t>(x[i]) & 0x7f800000u) + 0x00800000u;
  return (acc & 0x80000000u) != 0;
}

// f32_to_bf16_loop and any_nonfinite fused: the bf16 merge path's output in one sweep.
AMALGAM_CLONES bool f32_to_bf16_finite(const float* __restrict src, uint16_t* __restrict dst, size_t n) {
  uint32_t acc = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t u = std::bit_cast<uint32_t>(src[i]);
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    const uint32_t nan = (u >> 16) | 0x40u;
    dst[i] = static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
    acc |= (u & 0x7f800000u) + 0x00800000u;
  }
  return (acc & 0x80000000u) == 0;
}

void to_f32(DType src_type, const void* src, float* dst, size_t n) {
  switch (src_type) {
    case DType::F32:
      if (n) std::memcpy(dst, src, n * sizeof(float));  // memcpy with null is UB even for 0 bytes
      return;
    case DType::BF16: bf16_to_f32_loop(static_cast<const uint16_t*>(src), dst, n); return;
    case DType::F16: f16_to_f32_loop(static_cast<const uint16_t*>(src), dst, n); return;
    case DType::F64: {
      const double* s = static_cast<const double*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(s[i]);
      return;
    }
    case DType::F8_E4M3: {
      const uint8_t* s = static_cast<const uint8_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = kE4M3Table[s[i]];
      return;
    }
    case DType::F8_E5M2: {
      const uint8_t* s = static_cast<const uint8_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = kE5M2Table[s[i]];
      return;
    }
    case DType::I64: int_to_f32<int64_t>(src, dst, n); return;
    case DType::I32: int_to_f32<int32_t>(src, dst, n); return;
    case DType::I16: int_to_f32<int16_t>(src, dst, n); return;
    case DType::I8: int_to_f32<int8_t>(src, dst, n); return;
    case DType::U8: int_to_f32<uint8_t>(src, dst, n); return;
    case DType::BOOL: {
      const uint8_t* s = static_cast<const uint8_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = s[i] ? 1.0f : 0.0f;
      return;
    }
  }
}

void from_f32(DType dst_type, const float* src, void* dst, size_t n) {
  switch (dst_type) {
    case DType::F32:
      if (n) std::memcpy(dst, src, n * sizeof(float));  // memcpy with null is UB even for 0 bytes
      return;
    case DType::BF16: f32_to_bf16_loop(src, static_cast<uint16_t*>(dst), n); return;
    case DType::F16: f32_to_f16_loop(src, static_cast<uint16_t*>(dst), n); return;
    case DType::F64: {
      double* d = static_cast<double*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = static_cast<double>(src[i]);
      return;
    }
    case DType::F8_E4M3: {
      uint8_t* d = static_cast<uint8_t*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = static_cast<uint8_t>(encode(kE4M3, src[i]));
      return;
    }
    case DType::F8_E5M2: {
      uint8_t* d = static_cast<uint8_t*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = static_cast<uint8_t>(encode(kE5M2, src[i]));
      return;
    }
    case DType::I64: f32_to_int<int64_t>(src, dst, n); return;
    case DType::I32: f32_to_int<int32_t>(src, dst, n); return;
    case DType::I16: f32_to_int<int16_t>(src, dst, n); return;
    case DType::I8: f32_to_int<int8_t>(src, dst, n); return;
    case DType::U8: f32_to_int<uint8_t>(src, dst, n); return;
    case DType::BOOL: {
      uint8_t* d = static_cast<uint8_t*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = src[i] != 0.0f ? 1 : 0;  // NaN is truthy, as in torch
      return;
    }
  }
}

}  // namespace amalgam
