// The run loop: vCPU threads only run KVM_RUN and forward
// port and MMIO exits to the buses; the Boost.Asio event loop thread owns
// timers and the doorbells (ioeventfds) of virtio devices; a disk I/O loop
// thread, started only when a disk is attached, serves virtio-blk.

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/steady_timer.hpp>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>

#include "vmm/devices/block/block.hpp"
#include "vmm/micro_vm.hpp"

namespace pv::vmm {

namespace {

// A signal without SA_RESTART makes a blocked KVM_RUN return EINTR; its
// handler sets kvm_run.immediate_exit on the vCPU's own thread, so a kick
// that lands just before KVM_RUN is entered is not lost either: the kick
// documented in api.rst. Stopping is flagged before the kick, so a vCPU
// thread kicked before it published its kvm_run sees the flag instead.
int kick_signal() {
    return SIGRTMIN;
}

thread_local kvm_run* t_kicked_run = nullptr;

void install_kick_handler() {
    struct sigaction action {};
    action.sa_handler = [](int) {
        if (t_kicked_run != nullptr)
            t_kicked_run->immediate_exit = 1;
    };
    sigemptyset(&action.sa_mask);
    sigaction(kick_signal(), &action, nullptr);
}

std::string describe_registers(const kvm::Vcpu& vcpu) {
    auto regs = vcpu.get_regs();
    auto sregs = vcpu.get_sregs();
    if (!regs || !sregs)
        return "registers unavailable";
    return fmt::format(
        "vcpu {} rip={:#x} rsp={:#x} rflags={:#x} rax={:#x} rbx={:#x} rcx={:#x} rdx={:#x} "
        "rsi={:#x} rdi={:#x} cs={:#x} ss={:#x} cr0={:#x} cr2={:#x} cr3={:#x} cr4={:#x} "
        "efer={:#x}",
        vcpu.id(), regs->rip, regs->rsp, regs->rflags, regs->rax, regs->rbx, regs->rcx, regs->rdx,
        regs->rsi, regs->rdi, sregs->cs.selector, sregs->ss.selector, sregs->cr0, sregs->cr2,
        sregs->cr3, sregs->cr4, sregs->efer);
}

// VmHWM, the high-water mark of this process image's RSS. Unlike
// getrusage's ru_maxrss it is not inherited across execve, so a large parent
// (a Python benchmark harness) does not inflate it. STATUS is
// /proc/self/status, opened before confinement.
uint64_t peak_rss_kib(const Fd& status) {
    std::string text(4096, '\0');
    ssize_t length = status.valid() ? pread(status.get(), text.data(), text.size(), 0) : -1;
    if (length > 0) {
        text.resize(static_cast<size_t>(length));
        if (size_t at = text.find("VmHWM:"); at != std::string::npos)
            return std::strtoull(text.c_str() + at + 6, nullptr, 10);
    }
    struct rusage usage {};
    getrusage(RUSAGE_SELF, &usage);
    return static_cast<uint64_t>(usage.ru_maxrss);
}

}  // namespace

void MicroVm::kick_vcpus() {
    std::lock_guard lock(m_threads_mutex);
    for (pthread_t thread : m_vcpu_threads)
        pthread_kill(thread, kick_signal());
}

Result<RunSummary> MicroVm::run() {
    if (std::exchange(m_ran, true))
        return fail(make_error("run microVM", "already ran; a MicroVm runs once"));
    install_kick_handler();
    m_stop.set_kick([this] { kick_vcpus(); });
    auto status = Fd::open("/proc/self/status", O_RDONLY);
    if (status)
        m_proc_status = std::move(*status);
    m_start = std::chrono::steady_clock::now();

    boost::asio::io_context& events = m_events;
    auto work = boost::asio::make_work_guard(events);
    boost::asio::steady_timer timeout(events);
    if (m_config.timeout.count() > 0) {
        timeout.expires_after(m_config.timeout);
        timeout.async_wait([this](const boost::system::error_code& error) {
            if (!error)
                request_stop(ExitReason::Timeout,
                             fmt::format("no reset within {} ms", m_config.timeout.count()));
        });
    }
    auto disk_work = boost::asio::make_work_guard(m_disk_io);
    // Confinement in three moments (vmm/confine/policy.hpp): the process-wide
    // part now, before any thread of ours starts and once the timer and work
    // guards exist (Asio creates its eventfds and timerfd lazily); each
    // thread's filter as its first act; the limits and the Main filter here
    // once all threads run.
    PV_TRY(size_file_limit_for_disk());
    PV_TRY(confine::confine_process(m_config.confinement));
    // Each thread names itself (a prctl; naming another thread opens a file
    // under /proc, which the process filter forbids), then confines itself.
    std::thread event_thread([this, &events] {
        pthread_setname_np(pthread_self(), "pv-events");
        if (confine_thread(confine::ThreadRole::EventLoop))
            events.run();
    });
    std::thread disk_thread;
    if (m_uses_disk_io) {
        disk_thread = std::thread([this] {
            pthread_setname_np(pthread_self(), "pv-disk-io");
            if (confine_thread(confine::ThreadRole::DiskIo))
                m_disk_io.run();
        });
    }

    // vCPU 0 runs on the calling thread: one thread per vCPU still, and the
    // boot path skips a thread start and a scheduling hop (bench/boot).
    {
        std::lock_guard lock(m_threads_mutex);
        m_vcpu_threads.push_back(pthread_self());
    }
    std::vector<std::thread> vcpu_threads;
    for (size_t index = 1; index < m_vcpus.size(); ++index) {
        vcpu_threads.emplace_back([this, index] {
            pthread_setname_np(pthread_self(), fmt::format("pv-vcpu{}", index).c_str());
            if (confine_thread(confine::ThreadRole::Vcpu))
                run_vcpu(index);
        });
        std::lock_guard lock(m_threads_mutex);
        m_vcpu_threads.push_back(vcpu_threads.back().native_handle());
    }
    if (auto confined = confine::confine_main_thread(m_config.confinement); !confined)
        request_stop(ExitReason::HostError, confined.error().message());
    else
        run_vcpu(0);
    m_stop.wait();
    // A stop requested while threads were still starting may have missed
    // some; kick again now that every thread is known.
    kick_vcpus();
    for (auto& thread : vcpu_threads)
        thread.join();
    {
        std::lock_guard lock(m_threads_mutex);
        m_vcpu_threads.clear();
    }
    events.post([&timeout] { timeout.cancel(); });
    work.reset();
    events.stop();
    event_thread.join();
    // A request being served finishes before run() returns; later doorbells
    // are never read.
    disk_work.reset();
    m_disk_io.stop();
    if (disk_thread.joinable())
        disk_thread.join();
    PV_TRY(flush_disk());
    return summarize(m_start);
}

Result<void> MicroVm::size_file_limit_for_disk() {
    auto& limits = m_config.confinement.limits;
    if (!limits || !m_disk || m_disk->read_only() || limits->file_size == RLIM_INFINITY)
        return {};
    struct stat file {};
    if (stat(m_config.disk->path.c_str(), &file) != 0)
        return fail(errno_error("stat " + m_config.disk->path));
    limits->file_size = std::max(limits->file_size,
                                 confine::disk_file_size_bound(static_cast<uint64_t>(file.st_size),
                                                               m_disk->backend().size()));
    return {};
}

bool MicroVm::confine_thread(confine::ThreadRole role) {
    auto confined = confine::confine_thread(m_config.confinement, role);
    if (!confined)
        request_stop(ExitReason::HostError, confined.error().message());
    return confined.has_value();
}

void MicroVm::run_vcpu(size_t index) {
    const kvm::Vcpu& vcpu = m_vcpus[index];
    t_kicked_run = vcpu.run_state();
    while (!m_stop.stopping()) {
        auto result = vcpu.run();
        if (!result) {
            if (result.error().code == EINTR || result.error().code == EAGAIN) {
                m_counters.interrupted.fetch_add(1, std::memory_order_relaxed);
                continue;
            }
            request_stop(ExitReason::HostError,
                         fmt::format("vcpu {}: {}", vcpu.id(), result.error().message()));
            return;
        }
        if (!handle_exit(vcpu))
            return;
    }
}

bool MicroVm::handle_exit(const kvm::Vcpu& vcpu) {
    kvm_run* run = vcpu.run_state();
    switch (run->exit_reason) {
        case KVM_EXIT_IO:
            m_counters.io.fetch_add(1, std::memory_order_relaxed);
            return handle_io(vcpu);
        case KVM_EXIT_MMIO: {
            m_counters.mmio.fetch_add(1, std::memory_order_relaxed);
            auto& mmio = run->mmio;
            size_t length = std::min<size_t>(mmio.len, sizeof(mmio.data));
            bool claimed = mmio.is_write ? m_mmio_bus.write(mmio.phys_addr, {mmio.data, length})
                                         : m_mmio_bus.read(mmio.phys_addr, {mmio.data, length});
            if (!claimed)
                m_counters.unclaimed.fetch_add(1, std::memory_order_relaxed);
            return true;
        }
        case KVM_EXIT_SHUTDOWN:
            stop_with_registers(vcpu, ExitReason::TripleFault, "KVM_EXIT_SHUTDOWN (triple fault)");
            return false;
        case KVM_EXIT_INTERNAL_ERROR:
            stop_with_registers(
                vcpu, ExitReason::InternalError,
                fmt::format("KVM_EXIT_INTERNAL_ERROR suberror {}", run->internal.suberror));
            return false;
        case KVM_EXIT_FAIL_ENTRY:
            stop_with_registers(vcpu, ExitReason::FailEntry,
                                fmt::format("KVM_EXIT_FAIL_ENTRY reason {:#x}",
                                            run->fail_entry.hardware_entry_failure_reason));
            return false;
        case KVM_EXIT_SYSTEM_EVENT:
            if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
                request_stop(ExitReason::Reset, "KVM_SYSTEM_EVENT_RESET");
            else if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
                request_stop(ExitReason::PowerOff, "KVM_SYSTEM_EVENT_SHUTDOWN");
            else
                stop_with_registers(
                    vcpu, ExitReason::InternalError,
                    fmt::format("KVM_EXIT_SYSTEM_EVENT type {}", run->system_event.type));
            return false;
        case KVM_EXIT_INTR:
            m_counters.interrupted.fetch_add(1, std::memory_order_relaxed);
            return true;
        default:
            m_counters.other.fetch_add(1, std::memory_order_relaxed);
            stop_with_registers(vcpu, ExitReason::InternalError,
                                fmt::format("unhandled KVM exit {}", run->exit_reason));
            return false;
    }
}

bool MicroVm::handle_io(const kvm::Vcpu& vcpu) {
    kvm_run* run = vcpu.run_state();
    auto& io = run->io;
    // KVM fills these, but a bad offset would make us touch memory outside
    // the shared page, so it is checked like guest input.
    uint64_t bytes = uint64_t{io.size} * io.count;
    if (io.data_offset > vcpu.run_size() || bytes > vcpu.run_size() - io.data_offset ||
        io.size == 0) {
        stop_with_registers(vcpu, ExitReason::InternalError, "KVM_EXIT_IO data outside kvm_run");
        return false;
    }
    uint8_t* data = reinterpret_cast<uint8_t*>(run) + io.data_offset;
    for (uint32_t index = 0; index < io.count; ++index) {
        std::span<uint8_t> access(data + index * io.size, io.size);
        bool claimed = io.direction == KVM_EXIT_IO_OUT ? m_pio_bus.write(io.port, access)
                                                       : m_pio_bus.read(io.port, access);
        if (!claimed)
            m_counters.unclaimed.fetch_add(1, std::memory_order_relaxed);
    }
    return true;
}

void MicroVm::stop_with_registers(const kvm::Vcpu& vcpu, ExitReason reason, std::string what) {
    // The registers travel in the stop detail; main() (or an embedder)
    // decides where to log them.
    request_stop(reason, what + ": " + describe_registers(vcpu));
}

RunSummary MicroVm::summarize(std::chrono::steady_clock::time_point start) const {
    RunSummary summary;
    summary.reason = m_stop.reason();
    summary.detail = m_stop.detail();
    summary.wall_time = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - start);
    int64_t first_byte = m_first_serial_byte_us.load();
    if (first_byte >= 0)
        summary.first_serial_byte = std::chrono::microseconds(first_byte);
    summary.exits_io = m_counters.io.load();
    summary.exits_mmio = m_counters.mmio.load();
    summary.exits_unclaimed = m_counters.unclaimed.load();
    summary.exits_interrupted = m_counters.interrupted.load();
    summary.exits_other = m_counters.other.load();
    summary.peak_rss_kib = peak_rss_kib(m_proc_status);
    summary.guest_resident_kib = m_memory.resident_bytes() / 1024;
    if (m_disk) {
        const auto counts = m_disk->fault_counts();
        for (size_t fault = 0; fault < counts.size(); ++fault)
            summary.disk_faults[fault_name(static_cast<BlockFault>(fault))] = counts[fault];
    }
    return summary;
}

}  // namespace pv::vmm
