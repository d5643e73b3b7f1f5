#include "patcher/sandbox/jail/jail_root.hpp"

#include <elf.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "common/fd.hpp"

namespace pv::sandbox {

namespace {

using Kind = RootStep::Kind;

// mem(4), random(4), tty(4): the fixed numbers of the harmless nodes. The
// agent's /dev/tty gives ENXIO anyway (the jail has no controlling
// terminal); it is there because scripts test for it.
struct CharacterNode {
    const char* name;
    unsigned major;
    unsigned minor;
};
constexpr CharacterNode kCharacterNodes[] = {{"null", 1, 3},   {"zero", 1, 5},    {"full", 1, 7},
                                             {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};

// Host directories a dynamically linked program needs; on merged-/usr
// systems all but /usr are symbolic links.
constexpr const char* kLibraryPaths[] = {"/usr",    "/lib", "/lib64", "/lib32",
                                         "/libx32", "/bin", "/sbin"};

// Flags every bind made read-only keeps: MS_REMOUNT|MS_BIND sets the
// mount's flags to exactly what it is given.
constexpr unsigned long kReadOnlyBind = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV;

class Planner {
  public:
    explicit Planner(std::string staging) : m_staging(std::move(staging)) {}

    void mount(std::string source, std::string target, std::string type, unsigned long flags,
               std::string data = {}) {
        RootStep step{Kind::Mount,     target,          std::move(source),
                      std::move(type), std::move(data), flags};
        step.description = step.source.empty() && step.type.empty()
                               ? "remount " + shown(step.path)
                               : "mount " + (step.type.empty() ? step.source : step.type) + " on " +
                                     shown(step.path);
        m_plan.steps.push_back(std::move(step));
    }
    // A bind of SOURCE on TARGET, then made read-only (with EXTRA flags).
    void bind_read_only(const std::string& source, const std::string& target,
                        unsigned long extra = 0, bool optional = false) {
        mount(source, target, "", MS_BIND | MS_REC);
        m_plan.steps.back().optional = optional;
        mount("", target, "", kReadOnlyBind | extra);
        m_plan.steps.back().optional = optional;
        m_plan.steps.back().description = "make " + shown(target) + " read-only";
    }
    void add(Kind kind, std::string path, mode_t mode, dev_t device = 0, std::string text = {}) {
        RootStep step{kind, path, std::move(text)};
        step.mode = mode;
        step.device = device;
        step.description = kind == Kind::Grab    ? "take hold of " + step.source
                           : kind == Kind::Place ? "bind the socket on " + shown(step.path)
                                                 : "create " + shown(step.path);
        m_plan.steps.push_back(std::move(step));
    }
    void pivot() {
        RootStep step{Kind::Pivot, m_staging};
        step.description = "pivot_root into the new root";
        m_plan.steps.push_back(std::move(step));
    }
    [[nodiscard]] std::string staged(const std::string& path) const { return m_staging + path; }
    [[nodiscard]] RootPlan take() { return std::move(m_plan); }

  private:
    // Paths in messages as the jail will see them.
    [[nodiscard]] std::string shown(const std::string& path) const {
        if (path.rfind(m_staging, 0) == 0 && path.size() > m_staging.size())
            return path.substr(m_staging.size());
        return path == m_staging ? "/" : path;
    }

    std::string m_staging;
    RootPlan m_plan;
};

Result<void> plan_libraries(Planner& planner) {
    for (const char* path : kLibraryPaths) {
        struct stat status {};
        if (::lstat(path, &status) != 0)
            continue;
        if (S_ISLNK(status.st_mode)) {
            char target[256] = {};
            const ssize_t length = ::readlink(path, target, sizeof(target) - 1);
            if (length <= 0)
                return fail(errno_error(std::string("read link ") + path));
            planner.add(Kind::Symlink, planner.staged(path), 0, 0, std::string(target, length));
        } else if (S_ISDIR(status.st_mode)) {
            planner.add(Kind::Directory, planner.staged(path), 0755);
            planner.bind_read_only(path, planner.staged(path));
        }
    }
    return {};
}

Result<void> plan_devices(Planner& planner, const std::vector<std::string>& disk_nodes) {
    planner.mount("pv-dev", planner.staged("/dev"), "tmpfs", MS_NOSUID | MS_NOEXEC,
                  "mode=0755,size=64k");
    for (const CharacterNode& node : kCharacterNodes)
        planner.add(Kind::Node, planner.staged(std::string("/dev/") + node.name), S_IFCHR | 0666,
                    makedev(node.major, node.minor));
    for (const std::string& host_path : disk_nodes) {
        struct stat status {};
        if (::stat(host_path.c_str(), &status) != 0)
            return fail(errno_error("stat " + host_path));
        if (!S_ISBLK(status.st_mode) || host_path.rfind("/dev/", 0) != 0 ||
            host_path.find('/', 5) != std::string::npos)
            return fail(make_error("plan the jail's /dev", host_path + " is no /dev block node"));
        planner.add(Kind::Node, planner.staged(host_path), S_IFBLK | 0600, status.st_rdev);
    }
    return {};
}

}  // namespace

Result<RootPlan> plan_root(const RootInputs& inputs, const std::string& staging) {
    Planner planner(staging);
    planner.add(Kind::Grab, {}, 0, 0, inputs.socket_path);
    planner.mount("pv-root", staging, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m");
    for (const char* directory : {"/dev", "/proc", "/sys", "/tmp", "/run"})
        planner.add(Kind::Directory, planner.staged(directory), 0755);
    PV_TRY(plan_devices(planner, inputs.disk_nodes));
    planner.add(Kind::File, planner.staged(kJailSocketPath), 0600);
    planner.add(Kind::Place, planner.staged(kJailSocketPath), 0);
    planner.mount("pv-tmp", planner.staged("/tmp"), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    if (inputs.dynamic_program)
        PV_TRY(plan_libraries(planner));
    // Nothing is created in /dev after this; the agent makes its chroot's
    // /dev itself, from these nodes.
    planner.mount("", planner.staged("/dev"), "",
                  MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC);
    planner.pivot();
    // After the pivot: a proc of the new pid namespace, and host-wide
    // knobs in it read-only (a write to /proc/sysrq-trigger reboots the
    // host, /proc/sys holds the host kernel's settings).
    planner.mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC);
    planner.bind_read_only("/proc/sys", "/proc/sys", MS_NOEXEC);
    // (A kernel without CONFIG_MAGIC_SYSRQ has no trigger.)
    planner.bind_read_only("/proc/sysrq-trigger", "/proc/sysrq-trigger", MS_NOEXEC, true);
    planner.mount("sysfs", "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
    planner.mount("", "/", "", kReadOnlyBind);
    return planner.take();
}

Result<bool> is_dynamic_program(int fd, const std::string& name) {
    Elf64_Ehdr header{};
    if (::pread(fd, &header, sizeof(header), 0) != static_cast<ssize_t>(sizeof(header)) ||
        std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 || header.e_ident[EI_CLASS] != ELFCLASS64)
        return true;  // a script or another class: it needs the host's interpreter
    if (header.e_phentsize != sizeof(Elf64_Phdr) || header.e_phnum > 256)
        return fail(make_error("read " + name, "unexpected ELF program headers"));
    for (unsigned index = 0; index < header.e_phnum; ++index) {
        Elf64_Phdr program_header{};
        PV_TRY(pread_all(fd, &program_header, sizeof(program_header),
                         header.e_phoff + uint64_t{index} * sizeof(Elf64_Phdr),
                         "read the program headers of " + name));
        if (program_header.p_type == PT_INTERP)
            return true;
    }
    return false;
}

int build_root(const RootPlan& plan, int& failed_step) {
    // Nodes and directories get exactly the modes planned.
    const mode_t saved_mask = ::umask(0);
    int grabbed = -1;
    for (size_t index = 0; index < plan.steps.size(); ++index) {
        const RootStep& step = plan.steps[index];
        const char* path = step.path.c_str();
        int result = 0;
        switch (step.kind) {
            case Kind::Mount:
                result = ::mount(step.source.empty() ? nullptr : step.source.c_str(), path,
                                 step.type.empty() ? nullptr : step.type.c_str(), step.flags,
                                 step.data.empty() ? nullptr : step.data.c_str());
                break;
            case Kind::Directory:
                result = ::mkdir(path, step.mode);
                break;
            case Kind::Node:
                result = ::mknod(path, step.mode, step.device);
                break;
            case Kind::File:
                result = ::open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, step.mode);
                if (result >= 0)
                    result = ::close(result);
                break;
            case Kind::Symlink:
                result = ::symlink(step.source.c_str(), path);
                break;
            case Kind::Grab:
                if (grabbed >= 0)
                    ::close(grabbed);
                grabbed = static_cast<int>(::syscall(SYS_open_tree, AT_FDCWD, step.source.c_str(),
                                                     OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
                result = grabbed;
                break;
            case Kind::Place:
                result = static_cast<int>(::syscall(SYS_move_mount, grabbed, "", AT_FDCWD, path,
                                                    MOVE_MOUNT_F_EMPTY_PATH));
                break;
            case Kind::Pivot:
                // pivot_root(2), NOTES: the old root ends up stacked on "."
                // and is detached from there.
                if (::chdir(path) != 0 || ::syscall(SYS_pivot_root, ".", ".") != 0 ||
                    ::umount2(".", MNT_DETACH) != 0 || ::chdir("/") != 0)
                    result = -1;
                break;
        }
        if (result < 0 && !(step.optional && errno == ENOENT)) {
            failed_step = static_cast<int>(index);
            return -1;
        }
    }
    if (grabbed >= 0)
        ::close(grabbed);
    ::umask(saved_mask);
    return 0;
}

}  // namespace pv::sandbox
