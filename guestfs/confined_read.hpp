#pragma once

// read_package_database (package_database.hpp) in a child process, because
// a filesystem a hostile guest wrote is parsed in the host: libext2fs and
// the status-file parser then run in a process that cannot open a file,
// create a process or a socket, or write anywhere but the pipe to its parent
// (a seccomp allow-list that kills it on anything else), with a bounded
// address space, and that is killed when TIMEOUT passes. The parent only
// parses the child's bounded JSON answer (reply.hpp).
//
// The child is forked, not executed: it reads through DISK, the caller's
// open image object, so no second opener of the image and no helper binary
// are needed. It uses only malloc, DISK, libext2fs, libapt-pkg's parser,
// SQLite over memory and librpm's header parser, which tolerate a fork from a multi-threaded process; DISK must not be
// written to concurrently (the job verifies after the sandbox has ended).

#include <chrono>

#include "common/error.hpp"
#include "guestfs/package_database.hpp"
#include "imgfmt/block_device.hpp"

namespace pv::guestfs {

[[nodiscard]] Result<PackageDatabase> read_package_database_confined(
    img::BlockDevice& disk, DatabaseKind kind, std::chrono::milliseconds timeout);

}  // namespace pv::guestfs
