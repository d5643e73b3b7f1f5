#pragma once

// A fleet: one Slurm array job whose task N patches one image or
// one libvirt domain and writes its JSON report to REPORTS/task-N.json. The
// reports directory holds everything `fleet status` reads: fleet.json (this
// spec), the task list, the batch script, each task's report, its log
// (task-N.log) and its end record (task-N.done: host, start and end times,
// exit status).

#include <string>
#include <vector>

#include "common/error.hpp"

namespace pv::cli {

enum class TaskKind { Image, Domain };

struct FleetSpec {
    TaskKind kind = TaskKind::Image;
    std::vector<std::string> targets;          // image paths or domain names; task N is targets[N]
    std::string connect;                       // libvirt URI for domains ("" for libvirt's default)
    std::vector<std::string> patch_arguments;  // passed to every `patchvisor patch`
    std::string patchvisor;                    // the binary the tasks run
    std::string slurm_job;                     // the array job's id, once submitted
};

[[nodiscard]] std::string fleet_spec_path(const std::string& reports);
[[nodiscard]] std::string task_report_path(const std::string& reports, size_t index);
[[nodiscard]] std::string task_done_path(const std::string& reports, size_t index);
[[nodiscard]] std::string task_log_path(const std::string& reports, size_t index);

[[nodiscard]] Result<void> write_fleet_spec(const std::string& reports, const FleetSpec& spec);
[[nodiscard]] Result<FleetSpec> read_fleet_spec(const std::string& reports);

// Image paths from a list file: one a line, blank lines and lines starting
// with '#' ignored, relative paths taken from the current directory.
[[nodiscard]] Result<std::vector<std::string>> read_image_list(const std::string& path);

}  // namespace pv::cli
