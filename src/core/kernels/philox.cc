// Philox-4x32-10. The batched generator runs kLanes counters in lock-step over plain
// arrays so the compiler vectorizes the 32x32->64 multiplies (vpmuludq).
#include "kernels/philox.h"

#include <algorithm>

namespace amalgam {
namespace {
constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;

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
static void philox_groups(uint64_t key, uint32_t model, uint64_t g0, float* out) {
  uint32_t c0[kLanes], c1[kLanes], c2[kLanes], c3[kLanes];
  for (size_t l = 0; l < kLanes; ++l) {
    uint64_t g = g0 + l;
    c0[l] = static_cast<uint32_t>(g);
    c1[l] = static_cast<uint32_t>(g >> 32);
    c2[l] = model;
    c3[l] = 0;
  }
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int r = 0; r < 10; ++r) {
    for (size_t l = 0; l < kLanes; ++l) {
      uint64_t p0 = static_cast<uint64_t>(kM0) * c0[l];
      uint64_t p1 = static_cast<uint64_t>(kM1) * c2[l];
      uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1[l] ^ k0;
      uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3[l] ^ k1;
      c1[l] = static_cast<uint32_t>(p1);
      c3[l] = static_cast<uint32_t>(p0);
      c0[l] = n0;
      c2[l] = n2;
    }
    k0 += kW0;
    k1 += kW1;
  }
  for (size_t l = 0; l < kLanes; ++l) {
    out[4 * l + 0] = static_cast<float>(c0[l] >> 8) * 0x1p-24f;
    out[4 * l + 1] = static_cast<float>(c1[l] >> 8) * 0x1p-24f;
    out[4 * l + 2] = static_cast<float>(c2[l] >> 8) * 0x1p-24f;
    out[4 * l + 3] = static_cast<float>(c3[l] >> 8) * 0x1p-24f;
  }
}

void philox_uniforms(uint64_t key, uint32_t model, uint64_t first, size_t n, float* out) {
  float buf[4 * kLanes];
  uint64_t e = first, end = first + n;
  while (e < end) {
    uint64_t g0 = e >> 2;
    uint64_t base = g0 << 2;
    if ((e & 3) == 0 && end - e >= 4 * kLanes) {
      philox_groups(key, model, g0, out + (e - first));
      e += 4 * kLanes;
      continue;
    }
    philox_groups(key, model, g0, buf);
    uint64_t stop = std::min(end, base + 4 * kLanes);
    for (uint64_t i = e; i < stop; ++i) out[i - first] = buf[i - base];
    e = stop;
  }
}

}  // namespace amalgam
