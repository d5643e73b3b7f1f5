#pragma once

// Finding and removing what dead patchvisor processes left behind
// (`patchvisor gc`). A process killed with SIGKILL runs no
// destructor, so it may leave:
//   - in the runtime root (/run/patchvisor/<pid>-<n>/, runtime_dir.hpp): the
//     directory, a dead FUSE mount on its export/, a loop device whose
//     backing file is export/disk;
//   - in the work directory: the job's overlay and intent record
//     (job_record.hpp);
//   - next to the commit target: the temp file ".<name>.pv-tmp-*".
// Nothing of a live process is ever touched: a job record names its owner
// by pid, start time and boot id; a runtime directory, which only names a
// pid, counts as live while that pid runs a process that started before the
// directory last changed; a temp file some process holds open is live. An
// owner that is exiting (SIGKILLed but stuck in the kernel, see
// process_exiting in gc_scan.cpp) counts as dead: its FUSE connection is
// aborted, which lets it finish dying.

#include <string>
#include <vector>

#include "common/error.hpp"

namespace pv::cli {

enum class LeftoverKind {
    FuseConnection,  // /sys/fs/fuse/connections/N of a dead export: aborted
    LoopDevice,
    Mount,
    RuntimeDir,
    TempTarget,
    Overlay,
    JobRecord,
};

// Where fusectl shows FUSE connections (mounted by gc when absent).
inline constexpr const char* kFuseConnections = "/sys/fs/fuse/connections";

[[nodiscard]] const char* leftover_kind_name(LeftoverKind kind);

struct Leftover {
    LeftoverKind kind;
    std::string path;    // /dev/loopN, a mountpoint, a directory or a file
    std::string detail;  // why it is stale: "pid 123 is gone", the loop's backing file
};

struct GcOptions {
    std::string work_dir = "/var/tmp/patchvisor";
    std::string runtime_root = "/run/patchvisor";
};

struct GcScan {
    // In the order they must be removed: FUSE connections aborted first
    // (a read stuck on one holds a loop device), loop devices before the mounts
    // their backing files live on, mounts before the directories, and a
    // job's record after its files (a failed removal keeps the record, so
    // the next gc still finds them).
    std::vector<Leftover> leftovers;
    // What belongs to running processes and is left alone, for the report.
    std::vector<std::string> live;
};

// Looks, touches nothing.
[[nodiscard]] GcScan scan_leftovers(const GcOptions& options);

// Removes one leftover. Loop devices are detached (LOOP_CLR_FD) and waited
// for; mounts are unmounted lazily (a dead FUSE mount cannot answer);
// runtime directories are emptied one level deep, never recursively.
[[nodiscard]] Result<void> remove_leftover(const Leftover& leftover);

// What `patchvisor patch`, `check` and `batch` do about leftovers when they
// start: they look (in WORK_DIR and the default runtime root) and print one
// note on standard error naming `patchvisor gc`; they remove nothing, so a
// patch run never detaches a loop device or unmounts anything that is not
// its own.
void note_leftovers(const std::string& work_dir);

}  // namespace pv::cli
