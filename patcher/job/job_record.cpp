#include "patcher/job/job_record.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/fd.hpp"

namespace pv::patcher {

namespace {

std::string read_small_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string boot_id() {
    auto text = read_small_file("/proc/sys/kernel/random/boot_id");
    while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
        text.pop_back();
    return text;
}

}  // namespace

std::optional<uint64_t> process_start_ticks(int pid) {
    if (pid <= 0)
        return std::nullopt;
    const auto stat = read_small_file("/proc/" + std::to_string(pid) + "/stat");
    // proc(5): "pid (comm) state ppid ..."; comm may hold spaces and
    // parentheses, so fields are counted from the last ')'. starttime is
    // field 22, the 20th after the ')'.
    const auto close = stat.rfind(')');
    if (close == std::string::npos)
        return std::nullopt;
    std::istringstream fields(stat.substr(close + 1));
    std::string field;
    for (int index = 3; index <= 22; ++index) {
        if (!(fields >> field))
            return std::nullopt;
    }
    try {
        return std::stoull(field);
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

Result<ProcessIdentity> current_process_identity() {
    ProcessIdentity identity;
    identity.pid = static_cast<int>(::getpid());
    const auto start = process_start_ticks(identity.pid);
    identity.boot_id = boot_id();
    if (!start || identity.boot_id.empty())
        return fail(make_error("read this process's start time and boot id", "/proc unreadable"));
    identity.start_ticks = *start;
    return identity;
}

bool is_running(const ProcessIdentity& identity) {
    if (identity.boot_id != boot_id())
        return false;
    const auto start = process_start_ticks(identity.pid);
    return start && *start == identity.start_ticks;
}

Result<void> write_job_record(const std::string& path, const JobRecord& record) {
    const nlohmann::json json = {{"version", 1},
                                 {"pid", record.owner.pid},
                                 {"start_ticks", record.owner.start_ticks},
                                 {"boot_id", record.owner.boot_id},
                                 {"image", record.image},
                                 {"target", record.target},
                                 {"overlay", record.overlay}};
    const auto text = json.dump() + "\n";
    // One write(2) of a few hundred bytes: a kill leaves the whole record
    // or an empty file, which gc treats by the pid in its name.
    auto fd = PV_TRY(Fd::open(path, O_WRONLY | O_CREAT | O_EXCL, 0600));
    PV_TRY(pwrite_all(fd.get(), text.data(), text.size(), 0, "write " + path));
    return {};
}

Result<JobRecord> read_job_record(const std::string& path) {
    const auto text = read_small_file(path);
    auto json = nlohmann::json::parse(text, nullptr, false);
    const auto bad = [&path] { return fail(make_error("read job record " + path, "malformed")); };
    if (json.is_discarded() || !json.is_object() || json.value("version", 0) != 1)
        return bad();
    try {
        JobRecord record;
        record.owner.pid = json.at("pid").get<int>();
        record.owner.start_ticks = json.at("start_ticks").get<uint64_t>();
        record.owner.boot_id = json.at("boot_id").get<std::string>();
        record.image = json.at("image").get<std::string>();
        record.target = json.at("target").get<std::string>();
        record.overlay = json.at("overlay").get<std::string>();
        if (record.owner.pid <= 0 || !record.target.starts_with("/") ||
            !record.overlay.starts_with("/"))
            return bad();
        return record;
    } catch (const nlohmann::json::exception&) {
        return bad();
    }
}

std::string temp_target_prefix(const std::string& target) {
    const std::filesystem::path path(target);
    return (path.parent_path() / ("." + path.filename().string() + ".pv-tmp-")).string();
}

}  // namespace pv::patcher
