#include "exec/cancel.h"

#include <atomic>

namespace amalgam {
namespace {
// Lock-free atomics are the only shared state a signal handler may touch.
std::atomic<bool> g_cancel{false};
std::atomic<int> g_signal{0};
static_assert(std::atomic<bool>::is_always_lock_free);
static_assert(std::atomic<int>::is_always_lock_free);
}  // namespace

void request_cancel() noexcept { g_cancel.store(true, std::memory_order_relaxed); }
void clear_cancel() noexcept {
  g_cancel.store(false, std::memory_order_relaxed);
  g_signal.store(0, std::memory_order_relaxed);
}
bool cancel_requested() noexcept { return g_cancel.load(std::memory_order_relaxed); }
void set_cancel_signal(int signo) noexcept { g_signal.store(signo, std::memory_order_relaxed); }
int cancel_signal() noexcept { return g_signal.load(std::memory_order_relaxed); }

}  // namespace amalgam
