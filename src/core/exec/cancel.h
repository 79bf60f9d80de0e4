// Cooperative cancellation of a running merge. request_cancel() is async-signal-safe
// (a lock-free atomic store), so a SIGINT/SIGTERM handler may call it; the executor
// checks between chunks, stops its workers, removes its temporary directory and throws
// Error(Io) "merge interrupted".
#pragma once

namespace amalgam {

void request_cancel() noexcept;
void clear_cancel() noexcept;
bool cancel_requested() noexcept;
// The signal that asked for the cancel (0 if none or unknown); set by the CLI handler.
void set_cancel_signal(int signo) noexcept;
int cancel_signal() noexcept;

}  // namespace amalgam
