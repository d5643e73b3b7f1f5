#pragma once

// patchvisor's microVM as a library (target patchvisor::vmm): an x86_64 VM
// on /dev/kvm booting a Linux kernel (ELF vmlinux or bzImage) or any ELF
// guest, with an initrd and command line, an 8250 serial console, the
// i8042 reset, a virtio-blk disk over any image patchvisor::Image opens
// (raw, qcow, qcow2, an overlay) and a virtio-vsock device whose host side
// is the hybrid Unix-socket convention of Firecracker and Cloud Hypervisor.
// The patchvisor-vmm command is a thin user of this API.
//
//   patchvisor::VmConfig config("vmlinux");
//   config.cmdline("console=ttyS0").memory_mib(256).disk({"disk.qcow2"});
//   auto vm = patchvisor::MicroVm::create(std::move(config));
//   auto summary = vm->run();            // or vm->start(), then wait()
//
// Process-wide effects an embedder must know: a run installs a no-op
// handler for SIGRTMIN, the signal that kicks vCPU threads out of KVM_RUN
// (leave it alone); Confinement, when asked for, applies to the whole
// process.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <patchvisor/error.hpp>
#include <patchvisor/image.hpp>

namespace patchvisor {

enum class ExitReason {
    Reset,          // the guest reset (i8042 0xfe, or KVM's reset event)
    PowerOff,       // the guest powered off
    Timeout,        // the wall-clock limit passed
    TripleFault,    // KVM_EXIT_SHUTDOWN
    InternalError,  // KVM could not go on (emulation failure, unknown exit)
    FailEntry,      // KVM_EXIT_FAIL_ENTRY
    HostError,      // an ioctl or host resource failed during the run
    Stopped,        // MicroVm::stop()
};

// "reset", "power-off", "timeout", "triple-fault", "internal-error",
// "fail-entry", "host-error", "stopped".
[[nodiscard]] PATCHVISOR_API std::string_view to_string(ExitReason reason);

// Reset and power-off are how a guest ends on purpose.
[[nodiscard]] inline bool is_clean_exit(ExitReason reason) {
    return reason == ExitReason::Reset || reason == ExitReason::PowerOff;
}

struct ExitCounts {
    uint64_t io = 0;
    uint64_t mmio = 0;
    uint64_t unclaimed = 0;  // port or MMIO accesses no device owns
    uint64_t interrupted = 0;
    uint64_t other = 0;
};

struct RunSummary {
    ExitReason reason = ExitReason::Stopped;
    // Why, in words; for a crash of the guest, with its registers.
    std::string detail{};
    std::chrono::microseconds wall_time{0};
    std::optional<std::chrono::microseconds> first_serial_byte{};  // from the start of the run
    ExitCounts exits{};
    uint64_t peak_rss_kib = 0;
    uint64_t guest_resident_kib = 0;
    // virtio-blk requests the VMM refused, by reason ("out_of_range",
    // "wrong_direction", ...); empty without a disk.
    std::map<std::string, uint64_t> disk_faults{};
};

// A disk image the VM opens itself, locked while the VM lives.
struct DiskFile {
    std::string path{};
    // The format the caller knows; none: detected by the file's magic.
    std::optional<ImageFormat> format{};
    // ReadOnly offers VIRTIO_BLK_F_RO and fails the guest's writes.
    Access access = Access::ReadWrite;
    // Whether a qcow2 file's backing chain is followed (read-only).
    Backing backing = Backing::Refuse;
};

// Confinement for a process that exists to run one VM (patchvisor-vmm):
// once set-up is over, no_new_privs, the limits, the drop to IDENTITY and a
// seccomp allow-list per thread role that kills the process on any other
// system call. It applies to the whole process, so only run() accepts it.
struct ResourceLimits {
    uint64_t open_files = 1024;       // RLIMIT_NOFILE
    uint64_t file_size = UINT64_MAX;  // RLIMIT_FSIZE; UINT64_MAX: unchanged (the disk's
                                      // growth is added to a finite limit by the run)
};
struct Identity {
    uint32_t uid = 0;
    uint32_t gid = 0;
};
struct Confinement {
    bool seccomp = false;
    std::optional<ResourceLimits> limits{};
    std::optional<Identity> identity{};
};

// The guest's console output beyond this many bytes is dropped by default,
// so a hostile guest cannot fill the disk.
inline constexpr uint64_t kDefaultSerialLimit = uint64_t{64} << 20;

// What to build. Setters return the config for chaining; mistakes (a second
// disk, a bad size) are reported by MicroVm::create.
class PATCHVISOR_API VmConfig {
  public:
    // KERNEL: an ELF file (vmlinux, a freestanding guest) or a bzImage.
    explicit VmConfig(std::string kernel);
    VmConfig(VmConfig&& other) noexcept;
    VmConfig& operator=(VmConfig&& other) noexcept;
    ~VmConfig();

    VmConfig& initrd(std::string path);
    // The kernel command line; each device appends its virtio_mmio.device=.
    VmConfig& cmdline(std::string text);
    VmConfig& memory_mib(uint64_t mib);  // 32 .. 65536, default 128
    VmConfig& vcpus(uint32_t count);     // 1 .. 32, default 1
    // Zero (the default) means no limit.
    VmConfig& timeout(std::chrono::milliseconds limit);
    // Serial output to a file (created or truncated), to standard output,
    // both, or nowhere (the default).
    VmConfig& serial_log(std::string path);
    VmConfig& serial_stdout(bool enabled = true);
    VmConfig& serial_limit(uint64_t bytes);

    // The virtio-blk disk (one per VM): a file the VM opens and locks, or
    // an Image the caller opened, which the VM owns until take_disk().
    // A read-only Image is served read-only whatever ACCESS says.
    VmConfig& disk(DiskFile file);
    VmConfig& disk(Image image, Access access = Access::ReadWrite);

    // virtio-vsock with guest CID GUEST_CID (3 or more). UDS_PATH must not
    // exist; create() makes it, destroying the MicroVm removes it. A guest
    // connecting to host port P is connected to the Unix socket UDS_PATH_P;
    // a host client of UDS_PATH sends "CONNECT P\n", gets "OK <port>\n" and
    // is bridged to guest port P.
    VmConfig& vsock(uint64_t guest_cid, std::string uds_path);

    VmConfig& confinement(Confinement policy);

    struct State;  // opaque: defined inside the library

  private:
    friend class MicroVm;
    std::unique_ptr<State> m_state;
};

class PATCHVISOR_API MicroVm {
  public:
    // Checks CONFIG, opens the kernel, initrd and disk, creates the KVM VM
    // with its devices and loads the kernel. Nothing runs yet.
    [[nodiscard]] static Result<MicroVm> create(VmConfig config);

    MicroVm(MicroVm&& other) noexcept;
    MicroVm& operator=(MicroVm&& other) noexcept;
    MicroVm(const MicroVm&) = delete;
    MicroVm& operator=(const MicroVm&) = delete;
    // A VM still running is stopped and waited for.
    ~MicroVm();

    // Runs the VM on the calling thread (its vCPU 0) until the guest
    // resets or powers off, the timeout passes, the guest crashes or stop()
    // is called from another thread. A VM runs once.
    [[nodiscard]] Result<RunSummary> run();

    // Runs the VM on a thread of its own and returns at once. The caller's
    // event loop watches exit_fd() and calls wait() when it is readable.
    [[nodiscard]] Result<void> start();
    // Readable (an eventfd; never read it) once the run has ended. Valid
    // from create() until the MicroVm is destroyed.
    [[nodiscard]] int exit_fd() const;
    // Whether the run has ended (exit_fd() is then readable).
    [[nodiscard]] bool ended() const;
    // Blocks until a started run has ended and returns how it ended; may be
    // called again for the same answer.
    [[nodiscard]] Result<RunSummary> wait();

    // Asks the run to end with ExitReason::Stopped; from any thread, before
    // or during the run (not from a signal handler).
    void stop(std::string detail = "stopped by the embedder");

    // The Image given to VmConfig::disk, back to the caller, flushed, once
    // the run has ended (or before it started).
    [[nodiscard]] Result<Image> take_disk();

    struct State;  // opaque: defined inside the library

  private:
    explicit MicroVm(std::unique_ptr<State> state);
    std::unique_ptr<State> m_state;
};

}  // namespace patchvisor
