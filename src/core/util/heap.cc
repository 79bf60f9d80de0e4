#include "util/heap.h"

#include <malloc.h>

namespace amalgam {

void retain_freed_heap_memory() {
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
}

}  // namespace amalgam
