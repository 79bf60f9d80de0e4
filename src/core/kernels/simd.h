// Runtime dispatch for the hot element-wise loops without Highway boilerplate: GCC
// target_clones compiles a function for AVX2 and for the baseline and picks one at load
// time. FMA is deliberately not enabled, so both clones round identically (results do
// not depend on the machine).
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define AMALGAM_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define AMALGAM_SIMD_CLONES
#endif

// For the few kernels written with AVX-512 intrinsics (Philox, the bracket scan, mask
// bits): whether this CPU runs them. False off x86-64.
inline bool cpu_has_avx512f() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool v = (__builtin_cpu_init(), __builtin_cpu_supports("avx512f"));
  return v;
#else
  return false;
#endif
}

// AVX-512F and BW (16-bit lane compares: the mask bits of kernels/philox.cc).
inline bool cpu_has_avx512bw() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool v = cpu_has_avx512f() && (__builtin_cpu_init(), __builtin_cpu_supports("avx512bw"));
  return v;
#else
  return false;
#endif
}
