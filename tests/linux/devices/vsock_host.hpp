#pragma once

// The host's end of patchvisor-vmm's hybrid vsock convention (README.md
// "virtio-vsock"): a service on "<uds>_P" for guest connections, a client
// of "<uds>" that says "CONNECT P\n". Every wait has a deadline, so a VMM
// that stops moving bytes fails the test instead of hanging it.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/fd.hpp"

namespace pv::vmm::test {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

[[nodiscard]] inline Deadline after(std::chrono::seconds seconds) {
    return Clock::now() + seconds;
}

// Whether the peer (the VM) is still there; waits end early once it is not.
using StillRunning = std::function<bool()>;

// A listening Unix socket on PATH; invalid (and a test failure) if not.
[[nodiscard]] Fd listen_unix(const std::string& path, int backlog);
// The next connection on LISTENER, or an invalid Fd at DEADLINE or once
// RUNNING says the VM has ended.
[[nodiscard]] Fd accept_before(const Fd& listener, Deadline deadline,
                               const StillRunning& running = {});
// A stream bridged to guest port PORT: "CONNECT PORT\n" to UDS, retried
// until the guest accepts (the VMM closes the socket unanswered while
// nobody listens there), or an invalid Fd at DEADLINE or once RUNNING says
// the VM has ended.
[[nodiscard]] Fd connect_to_guest(const std::string& uds, uint32_t port, Deadline deadline,
                                  const StillRunning& running = {});
// The process that listens at the other end of STREAM (the VMM), or -1.
[[nodiscard]] pid_t peer_pid(const Fd& stream);

struct Exchanged {
    std::string received;
    bool finished = false;  // all of SEND written and end of file read
    std::string error;      // what went wrong otherwise
};
// Writes SEND, half-closes, and reads until end of file, both at once
// (the peer may echo while we write), until DEADLINE.
[[nodiscard]] Exchanged exchange(const Fd& stream, std::string_view send, Deadline deadline);
// Sends back whatever arrives until end of file, then half-closes.
[[nodiscard]] Exchanged echo(const Fd& stream, Deadline deadline);

// Pushes up to LIMIT bytes of filler without blocking and stops once the
// peer took nothing for QUIET (or at DEADLINE).
struct Pushed {
    uint64_t bytes = 0;  // what the peer took
    std::string error;   // the stream failed (not: it stopped taking bytes)
};
[[nodiscard]] Pushed push_until_stalled(const Fd& stream, uint64_t limit,
                                        std::chrono::seconds quiet, Deadline deadline);
// Whether STREAM ends (end of file or an error; unread bytes are dropped)
// before DEADLINE.
[[nodiscard]] bool closes_before(const Fd& stream, Deadline deadline);

// SIZE bytes from a generator seeded with SEED.
[[nodiscard]] std::string random_bytes(size_t size, uint64_t seed);

// A field of /proc/PID/status in KiB ("VmRSS", "VmHWM"), 0 if unreadable.
[[nodiscard]] uint64_t status_kib(pid_t pid, const std::string& field);

}  // namespace pv::vmm::test
