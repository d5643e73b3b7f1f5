// patchvisor-vmm: one microVM per process (DESIGN.md). Boots a kernel (ELF or
// bzImage) with an optional initrd and command line, runs it to reset,
// power-off or timeout and reports how it ended.

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <patchvisor/vmm.hpp>

namespace {

// "PATH" or "PATH,readonly"; a path that itself contains a comma still
// works unless it ends in ",readonly". The operator chose the file, so a
// qcow2's backing chain is followed (our overlays name their original by
// absolute path).
patchvisor::DiskFile parse_disk(const std::string& argument) {
    constexpr std::string_view kReadOnly = ",readonly";
    patchvisor::DiskFile disk{argument, std::nullopt, patchvisor::Access::ReadWrite,
                              patchvisor::Backing::Allow};
    if (argument.size() > kReadOnly.size() && argument.ends_with(kReadOnly)) {
        disk.path = argument.substr(0, argument.size() - kReadOnly.size());
        disk.access = patchvisor::Access::ReadOnly;
    }
    return disk;
}

nlohmann::json summary_json(const patchvisor::RunSummary& summary) {
    nlohmann::json json;
    json["exit_reason"] = std::string(patchvisor::to_string(summary.reason));
    json["detail"] = summary.detail;
    json["wall_ms"] = summary.wall_time.count() / 1000.0;
    if (summary.first_serial_byte)
        json["first_serial_byte_ms"] = summary.first_serial_byte->count() / 1000.0;
    json["exits"] = {{"io", summary.exits.io},
                     {"mmio", summary.exits.mmio},
                     {"unclaimed", summary.exits.unclaimed},
                     {"interrupted", summary.exits.interrupted},
                     {"other", summary.exits.other}};
    json["peak_rss_kib"] = summary.peak_rss_kib;
    json["guest_resident_kib"] = summary.guest_resident_kib;
    if (!summary.disk_faults.empty())
        json["disk_faults"] = summary.disk_faults;
    return json;
}

// RLIMIT_FSIZE must let the VMM write every file it legitimately writes: the
// serial log, which stops growing at the serial limit, and a disk image,
// for which the run raises the limit once the disk's size is known.
patchvisor::ResourceLimits confine_limits() {
    patchvisor::ResourceLimits limits;
    limits.file_size = patchvisor::kDefaultSerialLimit + 4096;
    return limits;
}

struct Flags {
    std::string kernel;
    std::string initrd;
    std::string cmdline;
    uint64_t memory_mib = 128;
    uint32_t vcpus = 1;
    std::string serial = "-";
    double timeout_seconds = 0;
    bool json = false;
    std::string disk;
    uint64_t vsock_cid = 0;
    std::string vsock_uds;
    bool no_seccomp = false;
    std::optional<uid_t> uid;
    std::optional<gid_t> gid;
};

void add_flags(CLI::App& app, Flags& flags) {
    app.add_option("--kernel", flags.kernel, "kernel: ELF (vmlinux, test guest) or bzImage")
        ->required()
        ->check(CLI::ExistingFile);
    app.add_option("--initrd", flags.initrd, "initial ramdisk")->check(CLI::ExistingFile);
    app.add_option("--cmdline", flags.cmdline, "kernel command line");
    app.add_option("--mem-mib", flags.memory_mib, "guest memory in MiB")->capture_default_str();
    app.add_option("--vcpus", flags.vcpus, "number of vCPUs")->capture_default_str();
    app.add_option("--serial-log", flags.serial, "serial output: a file path, or - for stdout")
        ->capture_default_str();
    app.add_option("--timeout-s", flags.timeout_seconds, "wall-clock limit in seconds (0: none)");
    app.add_option("--disk", flags.disk,
                   "PATH[,readonly]: disk image (raw, or qcow2 with its backing chain) served "
                   "by virtio-blk; locked while the VM runs, flushed at the end");
    auto* cid_option = app.add_option("--vsock-cid", flags.vsock_cid,
                                      "guest CID of a virtio-vsock device (3 or more)")
                           ->check(CLI::Range(uint64_t{3}, uint64_t{UINT32_MAX - 1}));
    app.add_option("--vsock-uds", flags.vsock_uds,
                   "PATH: hybrid vsock socket (guest → host port P connects to PATH_P; "
                   "clients of PATH send \"CONNECT P\\n\")")
        ->needs(cid_option);
    cid_option->needs(app.get_option("--vsock-uds"));
    app.add_flag("--json", flags.json, "print a one-line JSON summary on stdout at the end");
    // Confinement is on unless asked otherwise (vmm/confine/policy.hpp).
    // --no-seccomp exists for debugging only: to strace a new code path and
    // see every syscall it would need, where the filter would kill the VMM at
    // the first one missing from the lists.
    app.add_flag("--no-seccomp", flags.no_seccomp,
                 "debugging: run without the seccomp filters (rlimits and no_new_privs stay)");
    auto* uid_option =
        app.add_option("--uid", flags.uid, "after setup, drop to this user id (with --gid)");
    auto* gid_option =
        app.add_option("--gid", flags.gid, "after setup, drop to this group id (with --uid)");
    uid_option->needs(gid_option);
    gid_option->needs(uid_option);
}

patchvisor::VmConfig vm_config(const Flags& flags) {
    patchvisor::VmConfig config(flags.kernel);
    config.initrd(flags.initrd).cmdline(flags.cmdline).memory_mib(flags.memory_mib);
    config.vcpus(flags.vcpus);
    if (flags.serial == "-")
        config.serial_stdout();
    else
        config.serial_log(flags.serial);
    if (!flags.disk.empty())
        config.disk(parse_disk(flags.disk));
    if (!flags.vsock_uds.empty())
        config.vsock(flags.vsock_cid, flags.vsock_uds);
    config.timeout(std::chrono::milliseconds(static_cast<int64_t>(flags.timeout_seconds * 1000)));
    patchvisor::Confinement confinement;
    confinement.seccomp = !flags.no_seccomp;
    confinement.limits = confine_limits();
    if (flags.uid)
        confinement.identity = patchvisor::Identity{*flags.uid, *flags.gid};
    config.confinement(confinement);
    return config;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"patchvisor-vmm: run one microVM on /dev/kvm"};
    Flags flags;
    add_flags(app, flags);
    CLI11_PARSE(app, argc, argv);

    // A reader that goes away (a closed pipe on --serial-log -) must not
    // kill the VMM: writes then fail with EPIPE and are ignored.
    std::signal(SIGPIPE, SIG_IGN);
    auto vm = patchvisor::MicroVm::create(vm_config(flags));
    if (!vm) {
        fmt::print(stderr, "patchvisor-vmm: {}\n", vm.error().message());
        return 1;
    }
    auto summary = vm->run();
    if (!summary) {
        fmt::print(stderr, "patchvisor-vmm: {}\n", summary.error().message());
        return 1;
    }
    if (flags.json) {
        std::fflush(stdout);
        fmt::print("{}\n", summary_json(*summary).dump());
    }
    if (!patchvisor::is_clean_exit(summary->reason)) {
        fmt::print(stderr, "patchvisor-vmm: guest ended by {}: {}\n",
                   patchvisor::to_string(summary->reason), summary->detail);
        return 2;
    }
    return 0;
}
