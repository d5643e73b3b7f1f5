#pragma once

// The jail's root filesystem: a fresh tmpfs holding only what pv-agent
// needs, pivoted into (pivot_root(2)) with the host's tree detached
// (MNT_DETACH), so no host path is reachable from inside:
//
//   /               tmpfs, read-only once built
//   /dev            tmpfs, read-only: null, zero, full, random, urandom,
//                   tty (character nodes, 0666) and the disk's loop device
//                   and partition nodes (block, 0600); no loop-control, no
//                   host disk
//   /proc           a fresh proc of the jail's pid namespace, with
//                   /proc/sys and /proc/sysrq-trigger read-only
//   /sys            a fresh sysfs, read-only: the agent finds the disk's
//                   partitions in /sys/class/block and binds /sys into the
//                   guest chroot
//   /tmp            tmpfs (1777): the agent mounts the guest below it
//   /run/agent.sock the host's listening socket, bound in
//   /usr, /lib...   only for a dynamically linked agent (sanitizer builds):
//                   the host's /usr read-only and its /lib* links, so the
//                   interpreter and libraries load
//
// The agent binary itself is opened before and executed by descriptor.
// The plan is a list of steps computed in the parent (paths allocated
// there); the child, between clone3 and exec, only executes them.

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/error.hpp"

namespace pv::sandbox {

// Where the agent finds the host's socket inside the jail.
inline constexpr const char* kJailSocketPath = "/run/agent.sock";

struct RootStep {
    // Grab clones the mount tree at `source` (open_tree(2)) while it is still
    // visible; Place attaches the last grabbed tree on `path` (move_mount(2)).
    enum class Kind { Mount, Directory, Node, File, Symlink, Grab, Place, Pivot };
    Kind kind = Kind::Directory;
    std::string path;    // target (Mount, Pivot: the new root)
    std::string source;  // Mount: source; Symlink: link text
    std::string type;    // Mount: filesystem type ("" for binds)
    std::string data;    // Mount: options
    unsigned long flags = 0;
    mode_t mode = 0;
    dev_t device = 0;
    // Skipped when the path does not exist (ENOENT).
    bool optional = false;
    // What failed, in the error message ("mount tmpfs on /dev").
    std::string description;
};

struct RootPlan {
    std::vector<RootStep> steps;
};

struct RootInputs {
    // Host block device nodes to recreate in /dev ("/dev/loop3", "/dev/loop3p1").
    std::vector<std::string> disk_nodes;
    // The listening socket's path, bound in (grabbed before the staging
    // mount could hide it).
    std::string socket_path;
    // Whether the program needs the host's shared libraries.
    bool dynamic_program = false;
};

// STAGING is the directory the new root is built on (the child's mount
// namespace hides it from the host).
[[nodiscard]] Result<RootPlan> plan_root(const RootInputs& inputs, const std::string& staging);

// Whether the ELF program open as FD names an interpreter (PT_INTERP),
// i.e. is dynamically linked.
[[nodiscard]] Result<bool> is_dynamic_program(int fd, const std::string& name);

// In the child: runs the steps. Returns -1 with errno set and the index
// of the failed step in FAILED_STEP, or 0.
int build_root(const RootPlan& plan, int& failed_step);

}  // namespace pv::sandbox
