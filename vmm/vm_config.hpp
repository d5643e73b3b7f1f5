#pragma once

// What a microVM is asked to be, and how its run ended.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/access.hpp"
#include "imgfmt/block_device.hpp"
#include "imgfmt/image.hpp"
#include "vmm/confine/policy.hpp"

namespace pv::vmm {

// A disk image served by virtio-blk (--disk PATH[,readonly]): raw, or a
// qcow2 file (normally a patchvisor overlay) whose backing chain is opened
// read-only through imgfmt. The file is locked for the VM's lifetime.

struct DiskConfig {
    std::string path;
    Access access = Access::ReadWrite;
    // The format the caller names; none: by magic (the file itself only).
    std::optional<img::Format> format;
    // Whether a qcow2 file's backing chain is followed. patchvisor-vmm
    // follows it (the operator chose the file; our overlays name their
    // original by absolute path); the library API makes embedders say so.
    img::Backing backing = img::Backing::Allow;
    // A device the embedder opened already (the library API's Image): served
    // instead of opening PATH, which then only names it. Not locked here;
    // the embedder's Image holds its own lock.
    std::shared_ptr<img::BlockDevice> device;
};

// virtio-vsock with the hybrid Unix-socket backend (--vsock-cid,
// --vsock-uds): guest connections to host port P go to "<uds_path>_P"; host
// clients connect to UDS_PATH and send "CONNECT P\n" (README).
struct VsockConfig {
    uint64_t guest_cid = 3;
    std::string uds_path;
};

struct VmConfig {
    std::string kernel_path;
    std::string initrd_path;  // empty: no initrd
    std::string cmdline;
    uint64_t memory_mib = 128;
    uint32_t vcpus = 1;
    // Where guest serial output goes: a log file, stdout ("-"), both or nowhere.
    std::string serial_log_path;
    bool serial_stdout = false;
    // The guest decides how much it prints; beyond this many bytes its
    // console output is dropped so a hostile guest cannot fill the disk.
    uint64_t serial_output_limit = 64ull << 20;
    std::chrono::milliseconds timeout{0};  // 0: no wall-clock limit
    std::optional<DiskConfig> disk;
    std::optional<VsockConfig> vsock;
    // Seccomp, rlimits and uid drop once setup is over (vmm/confine/policy.hpp);
    // off by default in the library, on in patchvisor-vmm.
    confine::Policy confinement;
};

enum class ExitReason {
    Reset,          // i8042 reset or KVM_SYSTEM_EVENT_RESET
    PowerOff,       // KVM_SYSTEM_EVENT_SHUTDOWN
    Timeout,        // the wall-clock limit passed
    TripleFault,    // KVM_EXIT_SHUTDOWN
    InternalError,  // KVM_EXIT_INTERNAL_ERROR (e.g. emulation failure)
    FailEntry,      // KVM_EXIT_FAIL_ENTRY
    HostError,      // an ioctl or host resource failed
    Stopped,        // stopped by the embedder
};

[[nodiscard]] std::string_view to_string(ExitReason reason);

// Reset and power-off are how a guest ends on purpose.
[[nodiscard]] inline bool is_clean_exit(ExitReason reason) {
    return reason == ExitReason::Reset || reason == ExitReason::PowerOff;
}

// Exit counts across all vCPUs; written by vCPU threads, read at the end.
struct ExitCounters {
    std::atomic<uint64_t> io{0};
    std::atomic<uint64_t> mmio{0};
    std::atomic<uint64_t> unclaimed{0};  // port/MMIO accesses no device owns
    std::atomic<uint64_t> interrupted{0};
    std::atomic<uint64_t> other{0};
};

struct RunSummary {
    ExitReason reason = ExitReason::Stopped;
    std::string detail;
    std::chrono::microseconds wall_time{0};
    std::optional<std::chrono::microseconds> first_serial_byte;  // from VM start
    uint64_t exits_io = 0;
    uint64_t exits_mmio = 0;
    uint64_t exits_unclaimed = 0;
    uint64_t exits_interrupted = 0;
    uint64_t exits_other = 0;
    uint64_t peak_rss_kib = 0;
    uint64_t guest_resident_kib = 0;
    // virtio-blk requests not carried out, by fault name; empty without a disk.
    std::map<std::string, uint64_t> disk_faults;
};

}  // namespace pv::vmm
