// patchvisor-vmm: one microVM per process (DESIGN.md). Boots a kernel (ELF or
// bzImage) with an optional initrd and command line, runs it to reset,
// power-off or timeout and reports how it ended.

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>

#include "vmm/micro_vm.hpp"

namespace {

// "PATH" or "PATH,readonly"; a path that itself contains a comma still
// works unless it ends in ",readonly".
pv::vmm::DiskConfig parse_disk(const std::string& argument) {
    constexpr std::string_view kReadOnly = ",readonly";
    pv::vmm::DiskConfig disk{argument, pv::vmm::DiskAccess::ReadWrite};
    if (argument.size() > kReadOnly.size() && argument.ends_with(kReadOnly)) {
        disk.path = argument.substr(0, argument.size() - kReadOnly.size());
        disk.access = pv::vmm::DiskAccess::ReadOnly;
    }
    return disk;
}

nlohmann::json summary_json(const pv::vmm::RunSummary& summary) {
    nlohmann::json json;
    json["exit_reason"] = std::string(pv::vmm::to_string(summary.reason));
    json["detail"] = summary.detail;
    json["wall_ms"] = summary.wall_time.count() / 1000.0;
    if (summary.first_serial_byte)
        json["first_serial_byte_ms"] = summary.first_serial_byte->count() / 1000.0;
    json["exits"] = {{"io", summary.exits_io},
                     {"mmio", summary.exits_mmio},
                     {"unclaimed", summary.exits_unclaimed},
                     {"interrupted", summary.exits_interrupted},
                     {"other", summary.exits_other}};
    json["peak_rss_kib"] = summary.peak_rss_kib;
    json["guest_resident_kib"] = summary.guest_resident_kib;
    return json;
}

// RLIMIT_FSIZE must let the VMM write every file it legitimately writes: the
// serial log, which stops growing at serial_output_limit, and a disk image,
// for which MicroVm::run raises the limit once the disk's size is known.
pv::vmm::confine::ResourceLimits confine_limits(const pv::vmm::VmConfig& config) {
    pv::vmm::confine::ResourceLimits limits;
    limits.file_size = config.serial_output_limit + 4096;
    return limits;
}

}  // namespace

int main(int argc, char** argv) {
    // Before setup starts threads of its own (imgfmt's write-behind workers).
    (void)pv::vmm::confine::use_one_malloc_arena();
    CLI::App app{"patchvisor-vmm: run one microVM on /dev/kvm"};
    pv::vmm::VmConfig config;
    std::string serial = "-";
    double timeout_seconds = 0;
    bool json = false;
    std::string disk;
    uint64_t vsock_cid = 0;
    std::string vsock_uds;
    bool no_seccomp = false;
    std::optional<uid_t> uid;
    std::optional<gid_t> gid;
    app.add_option("--kernel", config.kernel_path, "kernel: ELF (vmlinux, test guest) or bzImage")
        ->required()
        ->check(CLI::ExistingFile);
    app.add_option("--initrd", config.initrd_path, "initial ramdisk")->check(CLI::ExistingFile);
    app.add_option("--cmdline", config.cmdline, "kernel command line");
    app.add_option("--mem-mib", config.memory_mib, "guest memory in MiB")->capture_default_str();
    app.add_option("--vcpus", config.vcpus, "number of vCPUs")->capture_default_str();
    app.add_option("--serial-log", serial, "serial output: a file path, or - for stdout")
        ->capture_default_str();
    app.add_option("--timeout-s", timeout_seconds, "wall-clock limit in seconds (0: none)");
    app.add_option("--disk", disk,
                   "PATH[,readonly]: disk image (raw, or qcow2 with its backing chain) served "
                   "by virtio-blk; locked while the VM runs, flushed at the end");
    auto* cid_option =
        app.add_option("--vsock-cid", vsock_cid, "guest CID of a virtio-vsock device (3 or more)")
            ->check(CLI::Range(uint64_t{3}, uint64_t{UINT32_MAX - 1}));
    app.add_option("--vsock-uds", vsock_uds,
                   "PATH: hybrid vsock socket (guest → host port P connects to PATH_P; "
                   "clients of PATH send \"CONNECT P\\n\")")
        ->needs(cid_option);
    cid_option->needs(app.get_option("--vsock-uds"));
    app.add_flag("--json", json, "print a one-line JSON summary on stdout at the end");
    // Confinement is on unless asked otherwise (vmm/confine/policy.hpp).
    // --no-seccomp exists for debugging only: to strace a new code path and
    // see every syscall it would need, where the filter would kill the VMM at
    // the first one missing from the lists.
    app.add_flag("--no-seccomp", no_seccomp,
                 "debugging: run without the seccomp filters (rlimits and no_new_privs stay)");
    auto* uid_option =
        app.add_option("--uid", uid, "after setup, drop to this user id (with --gid)");
    auto* gid_option =
        app.add_option("--gid", gid, "after setup, drop to this group id (with --uid)");
    uid_option->needs(gid_option);
    gid_option->needs(uid_option);
    CLI11_PARSE(app, argc, argv);

    if (serial == "-")
        config.serial_stdout = true;
    else
        config.serial_log_path = serial;
    if (!disk.empty())
        config.disk = parse_disk(disk);
    if (!vsock_uds.empty())
        config.vsock = pv::vmm::VsockConfig{vsock_cid, vsock_uds};
    config.timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000));
    config.confinement.seccomp = !no_seccomp;
    config.confinement.limits = confine_limits(config);
    if (uid)
        config.confinement.identity = pv::vmm::confine::Identity{*uid, *gid};

    // A reader that goes away (a closed pipe on --serial-log -) must not
    // kill the VMM: writes then fail with EPIPE and are ignored.
    std::signal(SIGPIPE, SIG_IGN);
    auto vm = pv::vmm::MicroVm::create(config);
    if (!vm) {
        fmt::print(stderr, "patchvisor-vmm: {}\n", vm.error().message());
        return 1;
    }
    auto summary = (*vm)->run();
    if (!summary) {
        fmt::print(stderr, "patchvisor-vmm: {}\n", summary.error().message());
        return 1;
    }
    if (json) {
        std::fflush(stdout);
        fmt::print("{}\n", summary_json(*summary).dump());
    }
    if (!pv::vmm::is_clean_exit(summary->reason)) {
        fmt::print(stderr, "patchvisor-vmm: guest ended by {}: {}\n",
                   pv::vmm::to_string(summary->reason), summary->detail);
        return 2;
    }
    return 0;
}
