// Counter-based random numbers for DARE/DELLA (METHODS.md §8.3): Philox-4x32-10
// (Salmon et al., SC'11) keyed by (seed, 64-bit hash of the tensor name), with the
// counter (element index / 4, model index). Every element's draw is a pure function of
// its coordinates, so masks do not depend on threads, chunk sizes or visiting order.
#pragma once
#include <array>
#include <cstdint>
#include <string_view>

namespace amalgam {

std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

// 64-bit FNV-1a of the name, then a splitmix64 finalizer.
uint64_t hash_name(std::string_view name);

// The Philox key of one tensor: mixes the seed and the name hash.
uint64_t philox_tensor_key(uint64_t seed, std::string_view tensor_name);

// Uniform floats in [0, 1) (24 random bits each) for elements [first, first + n) of
// model `model`: out[j] is the draw of element first + j. Element e uses word e % 4 of
// philox(counter = {lo(e/4), hi(e/4), model, 0}, key).
void philox_uniforms(uint64_t key, uint32_t model, uint64_t first, size_t n, float* out);

// The same draws without the AVX2 path (tests compare both).
void philox_uniforms_portable(uint64_t key, uint32_t model, uint64_t first, size_t n, float* out);

// One element's draw (reference / slow paths; equal to philox_uniforms).
float philox_uniform(uint64_t key, uint32_t model, uint64_t element);

}  // namespace amalgam
