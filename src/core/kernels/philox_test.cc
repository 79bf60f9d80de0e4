// Philox-4x32-10 against the Random123 known-answer vectors, batch == scalar, and the
// uniform draws' basic statistics.
#include "kernels/philox.h"

#include <gtest/gtest.h>

#include <vector>

namespace amalgam {
namespace {

TEST(Philox, Random123KnownAnswers) {
  using A4 = std::array<uint32_t, 4>;
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}), (A4{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
  EXPECT_EQ(philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu}),
            (A4{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
  EXPECT_EQ(philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u}),
            (A4{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
}

TEST(Philox, BatchEqualsScalarAtAnyOffset) {
  const uint64_t key = philox_tensor_key(42, "model.layers.3.mlp.up_proj.weight");
  for (uint64_t first : {0ull, 1ull, 3ull, 63ull, 64ull, 1000003ull, (1ull << 33) + 5}) {
    for (size_t n : {1u, 5u, 64u, 200u, 1000u}) {
      std::vector<float> out(n), portable(n);
      philox_uniforms(key, 2, first, n, out.data());
      philox_uniforms_portable(key, 2, first, n, portable.data());
      for (size_t i = 0; i < n; ++i) {
        ASSERT_EQ(out[i], philox_uniform(key, 2, first + i)) << first << "+" << i;
        ASSERT_EQ(portable[i], out[i]) << first << "+" << i;
      }
    }
  }
}

TEST(Philox, UniformsLookUniformAndKeysSeparateStreams) {
  const uint64_t key = philox_tensor_key(0, "t");
  const size_t n = 1 << 20;
  std::vector<float> u(n), v(n);
  philox_uniforms(key, 0, 0, n, u.data());
  philox_uniforms(key, 1, 0, n, v.data());
  double mean = 0, below = 0, same = 0;
  for (size_t i = 0; i < n; ++i) {
    ASSERT_GE(u[i], 0.0f);
    ASSERT_LT(u[i], 1.0f);
    mean += u[i];
    below += u[i] < 0.3f;
    same += u[i] == v[i];
  }
  EXPECT_NEAR(mean / n, 0.5, 0.002);
  EXPECT_NEAR(below / n, 0.3, 0.002);
  EXPECT_LT(same, 10);
  EXPECT_NE(philox_tensor_key(0, "a"), philox_tensor_key(0, "b"));
  EXPECT_NE(philox_tensor_key(0, "a"), philox_tensor_key(1, "a"));
}

}  // namespace
}  // namespace amalgam
