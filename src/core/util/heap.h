// Process-wide allocator settings for amalgam's commands (not set by the library on its
// own: a program embedding amalgam_core keeps its allocator as it configured it).
#pragma once
#include <cstddef>

namespace amalgam {

// glibc serves blocks above its (dynamic) mmap threshold with fresh mmaps, and trims the
// heap top past its trim threshold: either way freed memory goes back to the kernel and
// the next block of that size page-faults and zeroes it anew. A page fault costs ~10 us
// on a paravirtualized VM. Keeps blocks up to 256 MiB in the heap and up to 512 MiB of
// free heap: a merge's working set is bounded (threads x chunk), so this holds on to at
// most what it already used. Idempotent.
void retain_freed_heap_memory();

// Asks for transparent huge pages (madvise mode) on the 2 MiB-aligned interior of a large
// block that is about to be touched: a fault then maps 2 MiB instead of 4 KiB. On a
// paravirtualized VM a 4 KiB first-touch fault costs ~17 us (64 MiB: ~300 ms); huge pages
// the guest has used before take ~10 ms for the same. No-op where
// unsupported; blocks under 2 MiB hold no aligned huge page.
void advise_huge_pages(void* p, size_t bytes);

}  // namespace amalgam
