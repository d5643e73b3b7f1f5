// pv-agent: the in-guest patch agent (DESIGN.md). PID 1 of the microVM's
// initramfs, or PID 1 of the jail's namespaces with --socket and --disk.

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "agent/server.hpp"
#include "common/fd.hpp"

namespace {

struct Arguments {
    std::string socket;
    std::string disk;
    std::string mountpoint;
};

void usage() {
    std::fprintf(stderr,
                 "usage: pv-agent                       (PID 1 of the microVM: vsock, /dev/vda)\n"
                 "       pv-agent --socket PATH --disk DEVICE [--mount-dir DIR]   (jail)\n");
}

bool parse_arguments(int argc, char** argv, Arguments& args) {
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (i + 1 >= argc)
            return false;
        if (arg == "--socket")
            args.socket = argv[++i];
        else if (arg == "--disk")
            args.disk = argv[++i];
        else if (arg == "--mount-dir")
            args.mountpoint = argv[++i];
        else
            return false;
    }
    return args.socket.empty() == args.disk.empty();
}

// The microVM's initramfs has nothing mounted; the kernel leaves that to /init.
void mount_kernel_filesystems() {
    struct Spec {
        const char* type;
        const char* target;
    };
    for (const Spec& spec :
         {Spec{"proc", "/proc"}, Spec{"sysfs", "/sys"}, Spec{"devtmpfs", "/dev"}}) {
        mkdir(spec.target, 0755);
        if (mount(spec.type, spec.target, spec.type, MS_NOSUID, nullptr) != 0 && errno != EBUSY)
            std::fprintf(stderr, "pv-agent: mount %s: %s\n", spec.target, std::strerror(errno));
    }
}

// PID 1 of a VM must never exit (the kernel would panic): it ends the VM.
// patchvisor-vmm has no ACPI, so a power-off would only halt the vCPU until
// the deadline; a reboot pulses the i8042 reset line (reboot=k on the
// sandbox's command line), which ends the VM at once.
// The status goes to the console (the sandbox's log), where the host reads
// it back (patcher/sandbox/microvm/vmm_command.cpp): a reset carries none.
[[noreturn]] void power_off(int status) {
    std::fprintf(stderr, "pv-agent: exit status %d, rebooting\n", status);
    sync();
    if (getpid() == 1 && reboot(RB_AUTOBOOT) != 0)
        std::fprintf(stderr, "pv-agent: reboot: %s\n", std::strerror(errno));
    std::exit(status);
}

// Files in /proc report a size of 0, so they are read until end of file.
pv::Result<std::string> read_proc_file(const std::string& path) {
    pv::Fd fd = PV_TRY(pv::Fd::open(path, O_RDONLY));
    std::string text;
    char buffer[4096];
    ssize_t got = 0;
    while ((got = read(fd.get(), buffer, sizeof buffer)) > 0 && text.size() < 64 * 1024)
        text.append(buffer, static_cast<size_t>(got));
    if (got < 0)
        return pv::fail(pv::errno_error("read " + path));
    return text;
}

pv::Result<pv::agent::Channel> connect_microvm(std::string& disk) {
    mount_kernel_filesystems();
    const std::string cmdline = PV_TRY(read_proc_file("/proc/cmdline"));
    const uint32_t port = PV_TRY(pv::agent::port_from_cmdline(cmdline));
    disk = "/dev/vda";
    return pv::agent::Channel::connect_vsock(port);
}

}  // namespace

int main(int argc, char** argv) {
    Arguments args;
    if (!parse_arguments(argc, argv, args)) {
        usage();
        return 2;
    }
    const bool microvm = args.socket.empty();
    if (microvm && getpid() != 1) {
        usage();
        return 2;
    }
    // In our own mount namespace, keep the guest's mounts from propagating
    // back to the host.
    if (getpid() == 1 && mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        std::fprintf(stderr, "pv-agent: make / private: %s\n", std::strerror(errno));
    auto channel =
        microvm ? connect_microvm(args.disk) : pv::agent::Channel::connect_unix(args.socket);
    if (!channel) {
        std::fprintf(stderr, "pv-agent: %s\n", channel.error().message().c_str());
        if (microvm)
            power_off(1);
        return 1;
    }
    bool made_mountpoint = false;
    if (args.mountpoint.empty()) {
        char pattern[] = "/tmp/pv-agent.XXXXXX";
        if (microvm) {
            args.mountpoint = "/guest";
            mkdir(args.mountpoint.c_str(), 0755);
        } else if (mkdtemp(pattern) != nullptr) {
            args.mountpoint = pattern;
            made_mountpoint = true;
        }
    }
    pv::agent::Server server(*channel, {args.disk, args.mountpoint, microvm ? "microvm" : "jail"});
    auto served = server.serve();
    server.cleanup();
    if (made_mountpoint)
        rmdir(args.mountpoint.c_str());
    if (!served)
        std::fprintf(stderr, "pv-agent: %s\n", served.error().message().c_str());
    const int status = served ? 0 : 1;
    if (microvm)
        power_off(status);
    return status;
}
