#pragma once

// The host end of the agent's connection, shared by both sandboxes: a
// listening Unix socket in the sandbox's runtime directory, and the check
// that the process on the other end is the one the sandbox started.

#include <sys/types.h>

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

}  // namespace pv::sandbox
