#pragma once

// Process-wide confinement of patchvisor-vmm: no_new_privs, resource
// limits and the drop to an unprivileged user. The per-thread seccomp lists
// are in thread_filters.hpp; policy.hpp says in which order MicroVm applies all.

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>

#include "common/error.hpp"

namespace pv::vmm::confine {

struct ResourceLimits {
    // Descriptors the VMM may hold: setup's (KVM, guest files, the event
    // loop's) plus every vsock connection a guest opens; beyond it accept()
    // and socket() fail with EMFILE instead of exhausting the host.
    rlim_t open_files = 1024;
    // The largest file the VMM may write (RLIMIT_FSIZE). It must cover the
    // serial log and a disk overlay that grows with the guest's writes, so
    // the caller sizes it; RLIM_INFINITY leaves it alone.
    rlim_t file_size = RLIM_INFINITY;
};

// An RLIMIT_FSIZE that lets a disk image of FILE_SIZE bytes now, serving a
// disk of VIRTUAL_SIZE bytes, grow as far as the guest's writes can take it:
// a raw image never grows past its virtual size; a qcow2 overlay allocates
// each guest cluster at most once per run and its L2 tables (1/8192 of the
// data for 64 KiB clusters) and refcount blocks (1/32768) with it; a
// generous 1/1024 plus 16 MiB covers the tables, header and rounding.
[[nodiscard]] rlim_t disk_file_size_bound(uint64_t file_size, uint64_t virtual_size);

struct Identity {
    uid_t uid = 0;
    gid_t gid = 0;
};

// PR_SET_NO_NEW_PRIVS for the calling thread and the threads it creates
// afterwards: execve can no longer grant privileges (setuid binaries, file
// capabilities), and seccomp filters may be loaded without CAP_SYS_ADMIN.
[[nodiscard]] Result<void> set_no_new_privs();

// Lowers the process's limits (soft and hard, never raising one):
// RLIMIT_CORE 0 (a core would hold guest memory), RLIMIT_NOFILE,
// RLIMIT_FSIZE as given (SIGXFSZ is then ignored so an oversize write fails
// with EFBIG, which virtio-blk reports as an I/O error, instead of killing
// the VMM), RLIMIT_MEMLOCK 0 and RLIMIT_MSGQUEUE 0 (nothing of the VMM's
// uses them).
// RLIMIT_NPROC is left alone on purpose: since Linux 6.14 KVM starts its
// NX-huge-page recovery worker at the first KVM_RUN as a user task charged
// to the VMM's uid, so with RLIMIT_NPROC 0 an unprivileged VMM gets EAGAIN
// from every KVM_RUN (seen on 6.18). The seccomp lists forbid clone, fork
// and clone3 to every thread instead.
[[nodiscard]] Result<void> apply_resource_limits(const ResourceLimits& limits);

// Sets real, effective and saved uid and gid to IDENTITY and clears the
// supplementary groups; from root this also clears every capability. Must
// run before any thread has a seccomp filter (glibc signals every thread to
// change its ids) and after every file and /dev/kvm is open. Checks
// afterwards that the old identity cannot be regained.
[[nodiscard]] Result<void> drop_identity(const Identity& identity);

// Threads of this process (/proc/self/task).
[[nodiscard]] Result<size_t> thread_count();

// Whether a thread of this process has a seccomp filter (/proc/self/task).
[[nodiscard]] Result<bool> any_thread_filtered();

}  // namespace pv::vmm::confine
