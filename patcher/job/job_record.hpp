#pragma once

// The intent record of a patch job (`patchvisor gc`).
//
// A SIGKILLed job cannot clean up after itself, and `patchvisor gc` cannot
// search the whole filesystem for what it left. So before a job creates its
// first file it writes WORK_DIR/<stem>.job.json naming its owner (pid, the
// kernel's start time of that pid and the boot id, so a reused pid or a
// reboot is never mistaken for the owner) and the files it may leave: the
// overlay and the commit target, next to which the temp file
// ".<target name>.pv-tmp-*" is written (imgfmt/replace.hpp). The job
// removes the record last, after its overlay, however it ends.

#include <cstdint>
#include <optional>
#include <string>

#include "common/error.hpp"

namespace pv::patcher {

// Who a process is, in a way that survives pid reuse: the pid, its start
// time in clock ticks since boot (/proc/PID/stat field 22) and the boot id.
struct ProcessIdentity {
    int pid = 0;
    uint64_t start_ticks = 0;
    std::string boot_id;
};

[[nodiscard]] Result<ProcessIdentity> current_process_identity();

// Whether the process IDENTITY names is still running (same boot, pid
// present with the same start time).
[[nodiscard]] bool is_running(const ProcessIdentity& identity);

// The start time of PID in ticks since boot; nullopt when no such process.
[[nodiscard]] std::optional<uint64_t> process_start_ticks(int pid);

struct JobRecord {
    ProcessIdentity owner;
    std::string image;    // the original
    std::string target;   // where the commit writes (the image, or --output)
    std::string overlay;  // the job's overlay in the work directory
};

inline constexpr const char* kJobRecordSuffix = ".job.json";

// Writes RECORD to PATH (a new file: an existing one is an error).
[[nodiscard]] Result<void> write_job_record(const std::string& path, const JobRecord& record);

// Reads a record written by write_job_record; an error for anything else.
[[nodiscard]] Result<JobRecord> read_job_record(const std::string& path);

// The prefix of the commit's temp files next to TARGET:
// "<dir>/.<name>.pv-tmp-" (imgfmt/replace.cpp names them so).
[[nodiscard]] std::string temp_target_prefix(const std::string& target);

}  // namespace pv::patcher
