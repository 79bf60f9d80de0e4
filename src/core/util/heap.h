// Process-wide allocator settings for amalgam's commands (not set by the library on its
// own: a program embedding amalgam_core keeps its allocator as it configured it).
#pragma once

namespace amalgam {

// glibc serves blocks above its (dynamic) mmap threshold with fresh mmaps, and trims the
// heap top past its trim threshold: either way freed memory goes back to the kernel and
// the next block of that size page-faults and zeroes it anew. A page fault costs ~10 us
// on a paravirtualized VM. Keeps blocks up to 256 MiB in the heap and up to 512 MiB of
// free heap: a merge's working set is bounded (threads x chunk), so this holds on to at
// most what it already used. Idempotent.
void retain_freed_heap_memory();

}  // namespace amalgam
