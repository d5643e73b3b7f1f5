#include "patcher/cli/gc_scan.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "patcher/job/job_record.hpp"

namespace pv::cli {

namespace {

std::vector<std::string> list_directory(const std::string& path) {
    std::vector<std::string> names;
    DIR* directory = ::opendir(path.c_str());
    if (directory == nullptr)
        return names;
    while (const dirent* entry = ::readdir(directory)) {
        const std::string name = entry->d_name;
        if (name != "." && name != "..")
            names.push_back(name);
    }
    ::closedir(directory);
    std::sort(names.begin(), names.end());
    return names;
}

std::string first_line(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return line;
}

bool process_exists(int pid) {
    struct stat status {};
    return ::stat(("/proc/" + std::to_string(pid)).c_str(), &status) == 0;
}

// "<pid>-<n>" (runtime_dir.cpp) → pid.
std::optional<int> tag_pid(const std::string& tag) {
    const auto dash = tag.find('-');
    if (dash == 0 || dash == std::string::npos || dash + 1 == tag.size() || dash > 9)
        return std::nullopt;
    const auto digits = [](std::string_view text) {
        return std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    if (!digits(std::string_view(tag).substr(0, dash)) ||
        !digits(std::string_view(tag).substr(dash + 1)))
        return std::nullopt;
    return std::stoi(tag.substr(0, dash));
}

// Seconds since the epoch at which the kernel booted (proc(5) "btime").
std::optional<int64_t> boot_time() {
    std::ifstream in("/proc/stat");
    std::string key;
    int64_t value = 0;
    while (in >> key) {
        if (key == "btime" && in >> value)
            return value;
        in.ignore(1 << 20, '\n');
    }
    return std::nullopt;
}

// Whether a runtime directory's owner may still run: its pid exists and the
// process there started no later than the directory last changed (its owner
// created and filled it while alive; a process that reuses the pid starts
// after the owner died). Start times are known to a second through btime,
// so the comparison leans to "running": a doubt keeps the directory.
bool runtime_owner_may_run(int pid, const struct stat& directory) {
    const auto ticks = patcher::process_start_ticks(pid);
    if (!ticks)
        return process_exists(pid);  // vanished between the two reads? keep
    const auto booted = boot_time();
    if (!booted)
        return true;
    const int64_t started = *booted + static_cast<int64_t>(*ticks / ::sysconf(_SC_CLK_TCK));
    return started <= directory.st_ctim.tv_sec + 2;
}

// /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_mount_path(const std::string& text) {
    std::string path;
    for (size_t at = 0; at < text.size(); ++at) {
        if (text[at] == '\\' && at + 3 < text.size()) {
            const auto octal = text.substr(at + 1, 3);
            if (octal.size() == 3 && std::all_of(octal.begin(), octal.end(),
                                                 [](char c) { return c >= '0' && c <= '7'; })) {
                path += static_cast<char>(std::stoi(octal, nullptr, 8));
                at += 3;
                continue;
            }
        }
        path += text[at];
    }
    return path;
}

struct MountPoint {
    std::string path;
    std::string device;  // "major:minor"; for FUSE the minor names the connection
    std::string type;    // "fuse.patchvisor"
};

std::vector<MountPoint> mount_points() {
    std::vector<MountPoint> points;
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string id, parent, device, root, point, field, type;
        if (!(fields >> id >> parent >> device >> root >> point))
            continue;
        while (fields >> field && field != "-") {
        }
        fields >> type;
        points.push_back({unescape_mount_path(point), device, type});
    }
    return points;
}

// Whether PID is on its way out (PF_EXITING in the flags, /proc/PID/stat
// field 9). A SIGKILLed patchvisor can stay there for good: closing its loop
// device waits for a read that its own FUSE thread, already gone, would
// have answered, and its /dev/fuse descriptor, which would abort the
// connection, is closed only after that. Aborting the connection frees it.
bool process_exiting(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), {});
    const auto close = stat.rfind(')');
    if (close == std::string::npos)
        return false;
    std::istringstream fields(stat.substr(close + 1));
    std::string field;
    for (int index = 3; index <= 9; ++index)
        fields >> field;
    constexpr unsigned long kPfExiting = 0x4;  // include/linux/sched.h
    try {
        return (std::stoul(field) & kPfExiting) != 0;
    } catch (const std::exception&) {
        return false;
    }
}

// The paths of the files other processes hold open. Read with readlink, as
// stat through /proc/PID/fd would ask the file's filesystem, and a hung
// FUSE server elsewhere would then hang gc.
std::set<std::string> files_open_elsewhere() {
    std::set<std::string> open;
    const auto self = std::to_string(::getpid());
    for (const auto& pid : list_directory("/proc")) {
        if (pid == self || !tag_pid(pid + "-0"))
            continue;
        const auto fd_dir = "/proc/" + pid + "/fd";
        for (const auto& fd : list_directory(fd_dir)) {
            std::array<char, 4096> target{};
            const auto length =
                ::readlink((fd_dir + "/" + fd).c_str(), target.data(), target.size() - 1);
            if (length > 0)
                open.emplace(target.data(), static_cast<size_t>(length));
        }
    }
    return open;
}

// PATH with its directory's symlinks resolved, as /proc/PID/fd shows it.
std::string resolved(const std::string& directory, const std::string& name) {
    std::array<char, PATH_MAX> buffer{};
    if (::realpath(directory.c_str(), buffer.data()) == nullptr)
        return directory + "/" + name;
    return std::string(buffer.data()) + "/" + name;
}

class Scanner {
  public:
    explicit Scanner(const GcOptions& options) : m_options(options) {}

    GcScan run() {
        scan_runtime_root();
        scan_loop_devices();
        scan_mounts();
        scan_job_records();
        scan_orphan_overlays();
        GcScan scan;
        scan.live = std::move(m_live);
        for (auto* group :
             {&m_connections, &m_loops, &m_mounts, &m_dirs, &m_temps, &m_overlays, &m_records})
            scan.leftovers.insert(scan.leftovers.end(), group->begin(), group->end());
        return scan;
    }

  private:
    // The runtime directory's tag for PATH below the root, "" otherwise.
    std::string tag_of(const std::string& path) const {
        const auto prefix = m_options.runtime_root + "/";
        if (!path.starts_with(prefix))
            return "";
        const auto rest = path.substr(prefix.size());
        const auto tag = rest.substr(0, rest.find('/'));
        return tag_pid(tag) ? tag : "";
    }

    // Whether the owner of TAG is dead. A tag whose directory is gone (a
    // loop device outliving it) is judged by the pid alone.
    bool tag_is_stale(const std::string& tag) {
        if (const auto known = m_stale_tags.find(tag); known != m_stale_tags.end())
            return known->second;
        struct stat status {};
        const int pid = *tag_pid(tag);
        const bool stale = process_exiting(pid) ||
                           (::lstat((m_options.runtime_root + "/" + tag).c_str(), &status) == 0
                                ? !runtime_owner_may_run(pid, status)
                                : !process_exists(pid));
        m_stale_tags[tag] = stale;
        if (!stale)
            m_live.push_back(
                fmt::format("runtime {}/{} (pid {} runs)", m_options.runtime_root, tag, pid));
        return stale;
    }

    void scan_runtime_root() {
        for (const auto& name : list_directory(m_options.runtime_root)) {
            if (!tag_pid(name) || !tag_is_stale(name))
                continue;
            m_dirs.push_back({LeftoverKind::RuntimeDir, m_options.runtime_root + "/" + name,
                              fmt::format("pid {} is gone", *tag_pid(name))});
        }
    }

    void scan_loop_devices() {
        for (const auto& name : list_directory("/sys/block")) {
            if (!name.starts_with("loop"))
                continue;
            auto backing = first_line("/sys/block/" + name + "/loop/backing_file");
            if (backing.ends_with(" (deleted)"))
                backing.resize(backing.size() - 10);
            const auto tag = tag_of(backing);
            if (!tag.empty() && tag_is_stale(tag))
                m_loops.push_back({LeftoverKind::LoopDevice, "/dev/" + name, backing});
        }
    }

    void scan_mounts() {
        auto points = mount_points();
        // Deepest first, so a mount on top of another goes first.
        std::sort(points.begin(), points.end(),
                  [](const auto& a, const auto& b) { return a.path.size() > b.path.size(); });
        for (const auto& point : points) {
            const auto tag = tag_of(point.path);
            if (tag.empty() || !tag_is_stale(tag))
                continue;
            const auto colon = point.device.find(':');
            if (point.type.starts_with("fuse") && colon != std::string::npos)
                m_connections.push_back(
                    {LeftoverKind::FuseConnection,
                     std::string(kFuseConnections) + "/" + point.device.substr(colon + 1),
                     "FUSE export of dead " + tag});
            m_mounts.push_back({LeftoverKind::Mount, point.path, "of dead " + tag});
        }
    }

    void scan_job_records();
    void add_dead_job(const std::string& record_path, const patcher::JobRecord& record);
    // Adds the dead temp files next to TARGET; false if one is in use.
    bool add_temp_targets(const std::string& target, const std::string& why);
    void scan_orphan_overlays();

    const GcOptions& m_options;
    std::map<std::string, bool> m_stale_tags;
    std::set<std::string> m_live_targets;
    std::optional<std::set<std::string>> m_open_files;  // read when first needed
    std::vector<Leftover> m_connections, m_loops, m_mounts, m_dirs, m_temps, m_overlays, m_records;
    std::vector<std::string> m_live;
};

bool file_exists(const std::string& path) {
    struct stat status {};
    return ::lstat(path.c_str(), &status) == 0;
}

// "<image>-<pid>-<n>" (job.cpp names a job's files so) → pid.
std::optional<int> stem_pid(const std::string& stem) {
    const auto last = stem.rfind('-');
    if (last == std::string::npos || last == 0)
        return std::nullopt;
    const auto before = stem.rfind('-', last - 1);
    if (before == std::string::npos)
        return std::nullopt;
    return tag_pid(stem.substr(before + 1));
}

void Scanner::scan_job_records() {
    std::vector<std::pair<std::string, patcher::JobRecord>> dead;
    for (const auto& name : list_directory(m_options.work_dir)) {
        if (!name.ends_with(patcher::kJobRecordSuffix))
            continue;
        const auto path = m_options.work_dir + "/" + name;
        const auto stem =
            name.substr(0, name.size() - std::string(patcher::kJobRecordSuffix).size());
        auto record = patcher::read_job_record(path);
        if (record && patcher::is_running(record->owner)) {
            m_live_targets.insert(record->target);
            m_live.push_back(fmt::format("job {} (pid {} runs)", path, record->owner.pid));
        } else if (record) {
            dead.emplace_back(path, std::move(*record));
        } else if (const auto pid = stem_pid(stem); pid && !process_exists(*pid)) {
            // Killed while writing its record: nothing but the record and
            // perhaps an overlay can exist yet.
            const auto overlay = m_options.work_dir + "/" + stem + ".overlay.qcow2";
            if (file_exists(overlay))
                m_overlays.push_back({LeftoverKind::Overlay, overlay, "unreadable record"});
            m_records.push_back(
                {LeftoverKind::JobRecord, path, fmt::format("pid {} is gone", *pid)});
        } else {
            m_live.push_back("unreadable job record " + path + " (its pid runs)");
        }
    }
    // Live targets are all known before dead jobs' temp files are judged.
    for (const auto& [path, record] : dead)
        add_dead_job(path, record);
}

void Scanner::add_dead_job(const std::string& record_path, const patcher::JobRecord& record) {
    const auto why = fmt::format("job of pid {} is gone", record.owner.pid);
    if (file_exists(record.overlay))
        m_overlays.push_back({LeftoverKind::Overlay, record.overlay, why});
    // A temp file still in use keeps the record, so a later gc finds it.
    if (add_temp_targets(record.target, why))
        m_records.push_back({LeftoverKind::JobRecord, record_path, why});
}

bool Scanner::add_temp_targets(const std::string& target, const std::string& why) {
    bool all_dead = true;
    const auto prefix = patcher::temp_target_prefix(target);
    const auto slash = prefix.rfind('/');
    const auto directory = prefix.substr(0, slash);
    const auto name_prefix = prefix.substr(slash + 1);
    for (const auto& name : list_directory(directory)) {
        if (!name.starts_with(name_prefix))
            continue;
        const auto path = directory + "/" + name;
        struct stat status {};
        if (::lstat(path.c_str(), &status) != 0 || !S_ISREG(status.st_mode))
            continue;
        if (!m_open_files)
            m_open_files = files_open_elsewhere();
        if (m_live_targets.count(target) != 0 ||
            m_open_files->count(resolved(directory, name)) != 0) {
            m_live.push_back("temp target " + path + " (in use)");
            all_dead = false;
            continue;
        }
        m_temps.push_back({LeftoverKind::TempTarget, path, why});
    }
    return all_dead;
}

// Overlays without a record: the record is written before the overlay and
// removed after it, so an overlay whose record is missing belongs to a job
// that is gone, or to one that ended since the listing (then it is gone too).
void Scanner::scan_orphan_overlays() {
    constexpr std::string_view kSuffix = ".overlay.qcow2";
    for (const auto& name : list_directory(m_options.work_dir)) {
        if (!name.ends_with(kSuffix))
            continue;
        const auto stem = name.substr(0, name.size() - kSuffix.size());
        const auto path = m_options.work_dir + "/" + name;
        const bool known = std::any_of(m_overlays.begin(), m_overlays.end(),
                                       [&path](const auto& item) { return item.path == path; });
        if (known || file_exists(m_options.work_dir + "/" + stem + patcher::kJobRecordSuffix))
            continue;
        if (const auto pid = stem_pid(stem); pid && !process_exists(*pid))
            m_overlays.push_back(
                {LeftoverKind::Overlay, path, fmt::format("no record; pid {} is gone", *pid)});
    }
}

}  // namespace

const char* leftover_kind_name(LeftoverKind kind) {
    switch (kind) {
        case LeftoverKind::FuseConnection:
            return "fuse-connection";
        case LeftoverKind::LoopDevice:
            return "loop-device";
        case LeftoverKind::Mount:
            return "mount";
        case LeftoverKind::RuntimeDir:
            return "runtime-dir";
        case LeftoverKind::TempTarget:
            return "temp-target";
        case LeftoverKind::Overlay:
            return "overlay";
        case LeftoverKind::JobRecord:
            return "job-record";
    }
    return "unknown";
}

GcScan scan_leftovers(const GcOptions& options) {
    return Scanner(options).run();
}

}  // namespace pv::cli
