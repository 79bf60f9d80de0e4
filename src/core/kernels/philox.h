// Counter-based random masks for DARE/DELLA (METHODS.md §8.3): Philox-4x32-10
// (Salmon et al., SC'11) keyed by (seed, 64-bit hash of the tensor name). Every element's
// draw is a pure function of (key, model, element), so masks do not depend on threads,
// chunk sizes or visiting order.
//
// The draw of element e is a 32-bit integer U = H << 16 | L. H is 16-bit half e % 8 of
// philox(counter = {lo(e/8), hi(e/8), model, 0}, key) (word (e % 8) / 2, low half first),
// L the same half of the counter with last word 1. Element e is kept iff U < p * 2^32.
// H alone decides unless H == floor(p * 2^16) (one element in 65536), so a mask costs one
// Philox call per 8 elements and L is drawn only for those few.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace amalgam {

std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

// 64-bit FNV-1a of the name, then a splitmix64 finalizer.
uint64_t hash_name(std::string_view name);

// The Philox key of one tensor: mixes the seed and the name hash.
uint64_t philox_tensor_key(uint64_t seed, std::string_view tensor_name);

// Element `element`'s draw U (see above): the reference for the batched kernels.
uint32_t philox_draw(uint64_t key, uint32_t model, uint64_t element);

// Whether the element is kept with probability p: U < p * 2^32, exactly (p <= 0 or NaN:
// never; p >= 1: always).
bool philox_keep(uint64_t key, uint32_t model, uint64_t element, double p);

// Keep bits of elements [first, first + n): bit j of out[w] is philox_keep of element
// first + 64 w + j; the ceil(n / 64) words are overwritten, bits past n are 0. The fast
// path needs first % 8 == 0 (any n); other offsets give the same bits, slower.
void philox_keep_bits(uint64_t key, uint32_t model, uint64_t first, size_t n, double p, uint64_t* out);
// The same with a probability per element: element first + i is kept with p[i].
void philox_keep_bits_v(uint64_t key, uint32_t model, uint64_t first, size_t n, const float* p, uint64_t* out);

// The same bits without the AVX2/AVX-512 paths (tests compare both).
void philox_keep_bits_portable(uint64_t key, uint32_t model, uint64_t first, size_t n, double p, uint64_t* out);
void philox_keep_bits_v_portable(uint64_t key, uint32_t model, uint64_t first, size_t n, const float* p,
                                 uint64_t* out);

}  // namespace amalgam
