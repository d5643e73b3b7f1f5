// A stand-in for pv-agent in the jail tests. Called as the jail calls the
// agent (`NAME --socket PATH --disk DEVICE`), it connects, reports what it
// sees of its sandbox as one line of "key=value" words, then behaves as its
// name says: "stand-in" exits 0, "stand-in-hang" never ends,
// "stand-in-crash" dies of SIGSEGV, "stand-in-mount" mounts the disk's
// first partition (ext4), writes a file there and hangs with it mounted,
// "stand-in-probe" adds what it sees of its confinement (root and /dev
// entries, capability sets, the errno of denied system calls) and exits 0.
//
// Linked statically like pv-agent: the jail's root has no libraries.

#include <dirent.h>
#include <fcntl.h>
#include <linux/keyctl.h>
#include <linux/sched.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

std::string namespace_link(const char* name) {
    char target[128] = {};
    const std::string path = std::string("/proc/self/ns/") + name;
    if (::readlink(path.c_str(), target, sizeof(target) - 1) < 0)
        return "unreadable";
    return target;
}

// Interfaces of our network namespace, from the kernel, not from /sys
// (which shows the namespace it was mounted in).
std::string interfaces() {
    std::string names;
    if (struct if_nameindex* list = ::if_nameindex()) {
        for (struct if_nameindex* entry = list; entry->if_index != 0; ++entry)
            names += (names.empty() ? "" : ",") + std::string(entry->if_name);
        ::if_freenameindex(list);
    }
    return names;
}

bool loopback_up() {
    const int socket_fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    ifreq request{};
    std::strcpy(request.ifr_name, "lo");
    const bool up = ::ioctl(socket_fd, SIOCGIFFLAGS, &request) == 0 && (request.ifr_flags & IFF_UP);
    ::close(socket_fd);
    return up;
}

std::string report(const std::string& disk) {
    struct stat disk_status {};
    const bool block = ::stat(disk.c_str(), &disk_status) == 0 && S_ISBLK(disk_status.st_mode);
    struct statfs tmp {};
    const bool tmpfs = ::statfs("/tmp", &tmp) == 0 && tmp.f_type == 0x01021994;  // TMPFS_MAGIC
    char host[64] = {};
    ::gethostname(host, sizeof(host) - 1);
    std::string line = "process=" + std::to_string(::getpid());
    for (const char* name : {"mnt", "pid", "net", "ipc", "uts"})
        line += std::string(" ") + name + "=" + namespace_link(name);
    line += " interfaces=" + interfaces() + " lo_up=" + (loopback_up() ? "yes" : "no");
    line += " disk_block=" + std::string(block ? "yes" : "no");
    line += " tmp_tmpfs=" + std::string(tmpfs ? "yes" : "no") + " hostname=" + host + "\n";
    return line;
}

// The host file the probe test creates; it must not be visible inside.
constexpr const char* kHostMarker = "/var/tmp/patchvisor-jail-probe-marker";

std::string entries_of(const char* directory) {
    std::vector<std::string> names;
    if (DIR* dir = ::opendir(directory)) {
        while (const dirent* entry = ::readdir(dir)) {
            const std::string name = entry->d_name;
            if (name != "." && name != "..")
                names.push_back(name);
        }
        ::closedir(dir);
    }
    std::sort(names.begin(), names.end());
    std::string joined;
    for (const std::string& name : names)
        joined += (joined.empty() ? "" : ",") + name;
    return joined.empty() ? "-" : joined;
}

// "CapEff", ... from /proc/self/status, as the kernel prints them.
std::string status_field(const std::string& key) {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind(key + ":", 0) == 0) {
            const size_t start = line.find_first_not_of(" \t", key.size() + 1);
            return start == std::string::npos ? "" : line.substr(start);
        }
    }
    return "missing";
}

// "0" when the call succeeded, else the errno's name.
std::string outcome(long result) {
    if (result >= 0)
        return "0";
    const char* name = ::strerrorname_np(errno);
    return name ? name : std::to_string(errno);
}

// keyctl through the i386 system call ABI (int $0x80, where it is number
// 288) from this 64-bit process: the filter must cover that ABI too.
// "unsupported" when the kernel has no IA-32 emulation (getpid, 20, fails).
std::string probe_i386_keyctl() {
#if defined(__x86_64__)
    const auto int80 = [](long number, long first, long second) {
        long result = number;
        __asm__ volatile("int $0x80" : "+a"(result) : "b"(first), "c"(second) : "memory");
        return result;
    };
    if (int80(20, 0, 0) != ::getpid())
        return "unsupported";
    const long result = int80(288, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING);
    if (result >= 0)
        return "0";
    errno = static_cast<int>(-result);
    return outcome(-1);
#else
    return "unsupported";
#endif
}

// Each call is one the kernel would let root make (or fail with another
// errno) without the seccomp filter, so EPERM/ENOSYS shows the filter.
std::string probe_calls() {
    std::string line;
    line += " keyctl=" +
            outcome(::syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0));
    line += " perf_event_open=" + outcome(::syscall(SYS_perf_event_open, nullptr, 0, -1, -1, 0));
    line += " init_module=" + outcome(::syscall(SYS_init_module, nullptr, 0, ""));
    line += " setns=" + outcome(::syscall(SYS_setns, -1, 0));
    line += " ptrace=" + outcome(::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr));
    line += " unshare_user=" + outcome(::unshare(CLONE_NEWUSER));
    clone_args arguments{};
    line += " clone3=" + outcome(::syscall(SYS_clone3, &arguments, 0));
    line += " io_uring_setup=" + outcome(::syscall(SYS_io_uring_setup, 0, nullptr));
    line += " keyctl_i386=" + probe_i386_keyctl();
    // What stays allowed: the agent's own mounts, and the loss of
    // CAP_MKNOD shows in mknod.
    ::mkdir("/tmp/probe-mount", 0755);
    line += " mount=" + outcome(::mount("probe", "/tmp/probe-mount", "tmpfs", 0, nullptr));
    line += " mknod=" + outcome(::mknod("/tmp/probe-disk", S_IFBLK | 0600, makedev(8, 0)));
    line += " write_root=" + outcome(::mkdir("/probe", 0755));
    line += " write_proc_sys=" + outcome(::open("/proc/sys/kernel/core_pattern", O_WRONLY));
    line += " write_sysrq=" + outcome(::open("/proc/sysrq-trigger", O_WRONLY));
    return line;
}

std::string probe() {
    std::string line = " root=" + entries_of("/") + " dev=" + entries_of("/dev");
    line += " host_marker=" + std::string(::access(kHostMarker, F_OK) == 0 ? "visible" : "absent");
    for (const char* key :
         {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"})
        line += std::string(" ") + key + "=" + status_field(key);
    return line + probe_calls();
}

int connect_to(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0)
        return -1;
    return fd;
}

bool mount_and_write(const std::string& disk) {
    ::mkdir("/tmp/guest", 0755);
    if (::mount((disk + "p1").c_str(), "/tmp/guest", "ext4", 0, nullptr) != 0) {
        std::perror("stand-in: mount");
        return false;
    }
    std::ofstream("/tmp/guest/written-by-stand-in") << "hello from the jail\n";
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    std::string socket_path, disk;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i];
        (flag == "--socket" ? socket_path : disk) = argv[i + 1];
    }
    const std::string name = argv[0];
    std::fprintf(stderr, "stand-in %s starting\n", name.c_str());
    const int stream = connect_to(socket_path);
    if (stream < 0) {
        std::perror("stand-in: connect");
        return 3;
    }
    if (name == "stand-in-mount" && !mount_and_write(disk))
        return 4;
    std::string line = report(disk);
    if (name == "stand-in-probe")
        line.insert(line.size() - 1, probe());
    if (::write(stream, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
        return 5;
    if (name == "stand-in-hang" || name == "stand-in-mount")
        for (;;)
            ::pause();
    if (name == "stand-in-crash") {
        volatile int* nowhere = nullptr;
        *nowhere = 1;
    }
    return 0;
}
