// ByteBuffer: a byte vector whose resize() leaves new bytes uninitialized. Buffers that are
// filled right after they grow (resident inputs, output chunks) skip the zeroing memset a
// std::vector<uint8_t> does: 6% of a ties merge's CPU before (perf, session 5).
#pragma once
#include <cstdint>
#include <memory>
#include <new>
#include <vector>

#include "util/heap.h"

namespace amalgam {

template <typename T>
struct DefaultInitAllocator : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = DefaultInitAllocator<U>;
  };
  using std::allocator<T>::allocator;
  T* allocate(size_t n) {
    T* p = std::allocator<T>::allocate(n);
    advise_huge_pages(p, n * sizeof(T));  // large buffers: huge pages (util/heap.h)
    return p;
  }
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;  // default-init: no zeroing
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

using ByteBuffer = std::vector<uint8_t, DefaultInitAllocator<uint8_t>>;

// Sizes `b` to `n` bytes without keeping its contents: a buffer too small is replaced
// rather than grown, so nothing old is copied.
inline void resize_discarding(ByteBuffer& b, size_t n) {
  if (b.capacity() < n) ByteBuffer().swap(b);
  b.resize(n);
}

}  // namespace amalgam
