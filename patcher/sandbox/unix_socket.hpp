#pragma once

// The host end of the agent's connection, shared by both sandboxes: a
// listening Unix socket in the sandbox's runtime directory, and the check
// that the process on the other end is the one the sandbox started.

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace pv::sandbox {

// A non-blocking, close-on-exec stream socket bound to PATH (mode 0600) and
// listening for one connection.
[[nodiscard]] Result<Fd> listen_on(const std::string& path);

// Whether the peer of the connected STREAM is process EXPECTED
// (SO_PEERCRED). The runtime directory is root's alone, but any root process
// could otherwise connect first; only the sandbox's own child may be the
// other end (the VMM connects on its guest's behalf).
[[nodiscard]] bool connected_by(int stream, pid_t expected);

// How accept_child waits for the sandbox's child to connect.
struct ChildConnection {
    int listener = -1;        // from listen_on
    std::string socket_path;  // where LISTENER is bound, for messages
    pid_t child = -1;         // the only peer accepted (connected_by)
    int child_fd = -1;        // polled besides the listener (a pidfd), or -1
    std::chrono::milliseconds timeout{0};
    std::string log_path;  // named in the messages: the agent's log
};

// Accepts the child's connection within TIMEOUT. CHILD_ENDED is asked
// between tries and returns an error once the child has ended (no
// connection can come then); connections from other processes are dropped.
[[nodiscard]] Result<Fd> accept_child(const ChildConnection& connection,
                                      const std::function<Result<void>()>& child_ended);

}  // namespace pv::sandbox
