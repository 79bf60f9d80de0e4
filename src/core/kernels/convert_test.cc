// Conversion kernels against an independent reference: decoding computed with ldexp in
// double, encoding by searching the sorted table of representable values for the nearest
// one (ties to the even code). Exhaustive over every 16-bit and 8-bit pattern.
#include "kernels/convert.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace amalgam {
namespace {

struct Fmt {
  DType type;
  int E, M;
  bool fn;  // e4m3fn: no Inf, only all-ones is NaN
  int bits() const { return 1 + E + M; }
};
const Fmt kBF16{DType::BF16, 8, 7, false};
const Fmt kF16{DType::F16, 5, 10, false};
const Fmt kE4M3{DType::F8_E4M3, 4, 3, true};
const Fmt kE5M2{DType::F8_E5M2, 5, 2, false};

double ref_decode(const Fmt& f, uint32_t code) {
  const bool neg = (code >> (f.E + f.M)) & 1;
  const uint32_t e = (code >> f.M) & ((1u << f.E) - 1);
  const uint32_t m = code & ((1u << f.M) - 1);
  const int bias = (1 << (f.E - 1)) - 1;
  double v;
  if (f.fn && e == (1u << f.E) - 1 && m == (1u << f.M) - 1) v = NAN;
  else if (!f.fn && e == (1u << f.E) - 1) v = m ? NAN : INFINITY;
  else if (e == 0) v = std::ldexp(static_cast<double>(m), 1 - bias - f.M);
  else v = std::ldexp(1.0 + std::ldexp(static_cast<double>(m), -f.M), static_cast<int>(e) - bias);
  return neg ? -v : v;
}

// Positive finite values by code, ascending (codes 0..max_finite).
std::vector<double> finite_values(const Fmt& f) {
  std::vector<double> v;
  for (uint32_t c = 0; c < (1u << (f.E + f.M)); ++c) {
    double d = ref_decode(f, c);
    if (!std::isfinite(d)) break;
    v.push_back(d);
  }
  return v;
}

// Reference encoder. Returns the code; *is_nan tells the caller only NaN-ness matters.
uint32_t ref_encode(const Fmt& f, const std::vector<double>& vals, float x, bool* is_nan) {
  *is_nan = false;
  const uint32_t sign = std::signbit(x) ? 1u << (f.E + f.M) : 0u;
  const uint32_t inf_code = ((1u << f.E) - 1) << f.M;
  if (std::isnan(x)) return *is_nan = true, 0;
  const double a = std::fabs(static_cast<double>(x));
  const uint32_t max_code = static_cast<uint32_t>(vals.size() - 1);
  auto overflow = [&]() -> uint32_t {
    if (f.fn) return *is_nan = true, 0;
    return sign | inf_code;
  };
  if (std::isinf(x)) return overflow();
  if (a > vals.back()) {
    const double thr = vals.back() + (vals.back() - vals[vals.size() - 2]) / 2;
    if (a > thr) return overflow();
    if (a == thr && ((max_code + 1) & 1) == 0) return overflow();  // tie goes to the even code
    return sign | max_code;
  }
  auto it = std::lower_bound(vals.begin(), vals.end(), a);
  uint32_t hi = static_cast<uint32_t>(it - vals.begin());
  if (vals[hi] == a) return sign | hi;
  uint32_t lo = hi - 1;
  const double dl = a - vals[lo], dh = vals[hi] - a;
  if (dl < dh) return sign | lo;
  if (dh < dl) return sign | hi;
  return sign | ((lo & 1) ? hi : lo);
}

// Messages after << are only built on failure, which keeps millions of checks cheap.
#define WHERE dtype_name(f.type) << " code 0x" << std::hex << code
void check_decode(const Fmt& f, uint32_t code, float got) {
  const double want = ref_decode(f, code);
  if (std::isnan(want)) {
    ASSERT_TRUE(std::isnan(got)) << WHERE;
    ASSERT_EQ(std::signbit(got), std::signbit(want)) << WHERE;
    if (f.bits() == 16) {  // 16-bit NaN payloads fit in f32 and must survive
      const uint32_t payload = code & ((1u << f.M) - 1);
      ASSERT_EQ((std::bit_cast<uint32_t>(got) >> (23 - f.M)) & ((1u << f.M) - 1), payload) << WHERE;
    }
  } else {
    ASSERT_EQ(static_cast<double>(got), want) << WHERE;
    ASSERT_EQ(std::signbit(got), std::signbit(want)) << WHERE;
  }
}
#undef WHERE

void check_encode(const Fmt& f, const std::vector<double>& vals, float x, uint32_t got) {
  bool want_nan;
  const uint32_t want = ref_encode(f, vals, x, &want_nan);
  if (want_nan) {
    ASSERT_TRUE(std::isnan(ref_decode(f, got))) << dtype_name(f.type) << " x=" << std::hexfloat << x
                                                << " got 0x" << std::hex << got;
  } else {
    ASSERT_EQ(got, want) << dtype_name(f.type) << " x=" << std::hexfloat << x << std::hex << " got 0x" << got
                         << " want 0x" << want;
  }
}

uint32_t scalar_encode(const Fmt& f, float x) {
  switch (f.type) {
    case DType::BF16: return f32_to_bf16(x);
    case DType::F16: return f32_to_f16(x);
    case DType::F8_E4M3: return f32_to_f8e4m3(x);
    default: return f32_to_f8e5m2(x);
  }
}
float scalar_decode(const Fmt& f, uint32_t c) {
  switch (f.type) {
    case DType::BF16: return bf16_to_f32(static_cast<uint16_t>(c));
    case DType::F16: return f16_to_f32(static_cast<uint16_t>(c));
    case DType::F8_E4M3: return f8e4m3_to_f32(static_cast<uint8_t>(c));
    default: return f8e5m2_to_f32(static_cast<uint8_t>(c));
  }
}

// Encodes `xs` through the array kernel, returns the codes.
std::vector<uint32_t> array_encode(const Fmt& f, const std::vector<float>& xs) {
  std::vector<uint32_t> out(xs.size());
  if (f.bits() == 16) {
    std::vector<uint16_t> o(xs.size());
    from_f32(f.type, xs.data(), o.data(), xs.size());
    std::copy(o.begin(), o.end(), out.begin());
  } else {
    std::vector<uint8_t> o(xs.size());
    from_f32(f.type, xs.data(), o.data(), xs.size());
    std::copy(o.begin(), o.end(), out.begin());
  }
  return out;
}

// Random bit patterns (every exponent equally likely) plus, for each adjacent pair of
// representable values, the exact midpoint and its f32 neighbours: the tie cases.
std::vector<float> test_floats(const Fmt& f, size_t n_random) {
  std::vector<float> xs;
  std::mt19937_64 rng(1234);
  for (size_t i = 0; i < n_random; ++i) xs.push_back(std::bit_cast<float>(static_cast<uint32_t>(rng())));
  const auto vals = finite_values(f);
  const double step_top = vals.back() - vals[vals.size() - 2];
  std::vector<double> points(vals.begin(), vals.end());
  for (size_t i = 0; i + 1 < vals.size(); ++i) points.push_back((vals[i] + vals[i + 1]) / 2);
  points.push_back(vals.back() + step_top / 2);  // overflow tie
  points.push_back(vals.back() + step_top);
  points.push_back(vals[1] / 2);                  // half the smallest subnormal
  points.push_back(vals[1] / 4);
  for (double p : points) {
    float x = static_cast<float>(p);
    if (static_cast<double>(x) != p) continue;  // not exactly representable in f32
    for (float y : {x, std::nextafter(x, 0.0f), std::nextafter(x, INFINITY)}) {
      xs.push_back(y);
      xs.push_back(-y);
    }
  }
  for (float s : {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, std::numeric_limits<float>::max(),
                  std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::min()})
    xs.push_back(s);
  xs.push_back(std::bit_cast<float>(0x7f800001u));  // signalling NaN
  xs.push_back(std::bit_cast<float>(0xffbfffffu));
  return xs;
}

class ConvertFmt : public testing::TestWithParam<int> {
 protected:
  const Fmt& fmt() const {
    static const Fmt* all[] = {&kBF16, &kF16, &kE4M3, &kE5M2};
    return *all[GetParam()];
  }
};

TEST_P(ConvertFmt, DecodeEveryPatternExhaustively) {
  const Fmt& f = fmt();
  const uint32_t n = 1u << f.bits();
  std::vector<float> got(n);
  if (f.bits() == 16) {
    std::vector<uint16_t> codes(n);
    for (uint32_t c = 0; c < n; ++c) codes[c] = static_cast<uint16_t>(c);
    to_f32(f.type, codes.data(), got.data(), n);
  } else {
    std::vector<uint8_t> codes(n);
    for (uint32_t c = 0; c < n; ++c) codes[c] = static_cast<uint8_t>(c);
    to_f32(f.type, codes.data(), got.data(), n);
  }
  for (uint32_t c = 0; c < n; ++c) {
    check_decode(f, c, got[c]);
    check_decode(f, c, scalar_decode(f, c));
  }
}

TEST_P(ConvertFmt, EncodeRoundsToNearestEven) {
  const Fmt& f = fmt();
  const auto vals = finite_values(f);
  const auto xs = test_floats(f, 1'000'000);
  const auto got = array_encode(f, xs);
  for (size_t i = 0; i < xs.size(); ++i) {
    check_encode(f, vals, xs[i], got[i]);
    check_encode(f, vals, xs[i], scalar_encode(f, xs[i]));
  }
}

TEST_P(ConvertFmt, EveryPatternRoundTrips) {
  const Fmt& f = fmt();
  for (uint32_t c = 0; c < (1u << f.bits()); ++c) {
    const float x = scalar_decode(f, c);
    const uint32_t back = scalar_encode(f, x);
    if (std::isnan(x)) {
      EXPECT_TRUE(std::isnan(scalar_decode(f, back)));
      EXPECT_EQ(back >> (f.E + f.M), c >> (f.E + f.M)) << "NaN sign lost";
    } else {
      ASSERT_EQ(back, c) << std::hex << "code 0x" << c;
    }
  }
}

TEST_P(ConvertFmt, ArrayTailsMatchScalar) {
  // Vector loops have remainders: every length and misalignment of a short run.
  const Fmt& f = fmt();
  const auto xs = test_floats(f, 4096);
  for (size_t start = 0; start < 9; ++start)
    for (size_t len = 0; len < 70; ++len) {
      std::vector<float> part(xs.begin() + start * 97, xs.begin() + start * 97 + len);
      const auto got = array_encode(f, part);
      for (size_t i = 0; i < len; ++i) ASSERT_EQ(got[i], scalar_encode(f, part[i]));
    }
}

std::string fmt_name(const testing::TestParamInfo<int>& info) {
  static const char* const names[] = {"BF16", "F16", "F8_E4M3", "F8_E5M2"};
  return names[info.param];
}
INSTANTIATE_TEST_SUITE_P(All, ConvertFmt, testing::Values(0, 1, 2, 3), fmt_name);

TEST(Convert, KnownValues) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);  // the overflow tie rounds to Inf
  EXPECT_EQ(f32_to_f8e4m3(448.0f), 0x7e);
  EXPECT_EQ(f32_to_f8e4m3(464.0f), 0x7e);  // tie between 448 and the NaN slot -> 448 (even)
  EXPECT_TRUE(std::isnan(f8e4m3_to_f32(f32_to_f8e4m3(500.0f))));
  EXPECT_EQ(f32_to_f8e5m2(57344.0f), 0x7b);
  EXPECT_EQ(f32_to_f8e5m2(61440.0f), 0x7c);
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3f808000u)), 0x3f80);  // tie, even stays
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3f818000u)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
}

TEST(Convert, OtherTypesToF32AndBack) {
  const double d[] = {1.5, -2.25, 1e300, -0.0};
  float out[4];
  to_f32(DType::F64, d, out, 4);
  EXPECT_EQ(out[0], 1.5f);
  EXPECT_EQ(out[1], -2.25f);
  EXPECT_TRUE(std::isinf(out[2]));
  EXPECT_TRUE(std::signbit(out[3]));

  const int64_t i64[] = {-5, 0, 1LL << 40, 7};
  to_f32(DType::I64, i64, out, 4);
  EXPECT_EQ(out[0], -5.0f);
  EXPECT_EQ(out[2], 1099511627776.0f);
  const int32_t i32[] = {-7, 3, 2147483647, 0};
  to_f32(DType::I32, i32, out, 4);
  EXPECT_EQ(out[0], -7.0f);
  const int16_t i16[] = {-32768, 5, 0, 1};
  to_f32(DType::I16, i16, out, 4);
  EXPECT_EQ(out[0], -32768.0f);
  const int8_t i8[] = {-128, 127, 0, 1};
  to_f32(DType::I8, i8, out, 4);
  EXPECT_EQ(out[0], -128.0f);
  EXPECT_EQ(out[1], 127.0f);
  const uint8_t u8[] = {255, 0, 1, 2};
  to_f32(DType::U8, u8, out, 4);
  EXPECT_EQ(out[0], 255.0f);
  const uint8_t b[] = {0, 1, 2, 0};
  to_f32(DType::BOOL, b, out, 4);
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_EQ(out[2], 1.0f);

  const float src[] = {2.5f, -3.5f, 1e10f, NAN, -1e10f, 0.4f};
  int8_t o8[6];
  from_f32(DType::I8, src, o8, 6);
  EXPECT_EQ(o8[0], 2);  // half to even
  EXPECT_EQ(o8[1], -4);
  EXPECT_EQ(o8[2], 127);  // saturates
  EXPECT_EQ(o8[3], 0);    // NaN -> 0
  EXPECT_EQ(o8[4], -128);
  EXPECT_EQ(o8[5], 0);
  uint8_t ou8[6];
  from_f32(DType::U8, src, ou8, 6);
  EXPECT_EQ(ou8[1], 0);
  EXPECT_EQ(ou8[2], 255);
  int64_t o64[6];
  from_f32(DType::I64, src, o64, 6);
  EXPECT_EQ(o64[2], 10000000000LL);
  EXPECT_EQ(o64[4], -10000000000LL);
  int32_t o32[6];
  from_f32(DType::I32, src, o32, 6);
  EXPECT_EQ(o32[2], 2147483647);
  double od[6];
  from_f32(DType::F64, src, od, 6);
  EXPECT_EQ(od[0], 2.5);
  uint8_t ob[6];
  from_f32(DType::BOOL, src, ob, 6);
  EXPECT_EQ(ob[0], 1);
  EXPECT_EQ(ob[5], 1);
  const float z = 0.0f;
  from_f32(DType::BOOL, &z, ob, 1);
  EXPECT_EQ(ob[0], 0);
  float of[6];
  from_f32(DType::F32, src, of, 6);
  EXPECT_EQ(std::memcmp(of, src, sizeof(of)), 0);
}

}  // namespace
}  // namespace amalgam

namespace amalgam {
namespace {

TEST(Convert, AnyNonfiniteFindsEveryInfAndNanAtEveryPosition) {
  // Every bf16 bit pattern (all exponents, signs, NaN payloads) with random low bits.
  std::vector<float> all(65536);
  for (uint32_t h = 0; h < 65536; ++h) all[h] = std::bit_cast<float>((h << 16) | (h * 2654435761u >> 16));
  for (uint32_t h = 0; h < 65536; ++h) {
    float v = all[h];
    EXPECT_EQ(any_nonfinite(&v, 1), !std::isfinite(v)) << h;
  }
  std::vector<float> finite(1000, 1.5f);
  EXPECT_FALSE(any_nonfinite(finite.data(), finite.size()));
  EXPECT_FALSE(any_nonfinite(finite.data(), 0));
  for (size_t at : {0u, 7u, 8u, 31u, 500u, 999u}) {
    auto x = finite;
    x[at] = -std::numeric_limits<float>::infinity();
    EXPECT_TRUE(any_nonfinite(x.data(), x.size())) << at;
    x[at] = std::numeric_limits<float>::max();
    EXPECT_FALSE(any_nonfinite(x.data(), x.size())) << at;
  }
}

}  // namespace
}  // namespace amalgam
