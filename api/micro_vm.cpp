// patchvisor::MicroVm (include/patchvisor/vmm.hpp) over pv::vmm::MicroVm:
// run on the caller's thread, or on a thread of its own whose end an
// eventfd announces to the caller's event loop.

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "api/convert.hpp"
#include "api/image_device.hpp"
#include "api/vm_config_state.hpp"
#include "common/fd.hpp"
#include "vmm/micro_vm.hpp"

namespace patchvisor {

struct MicroVm::State {
    // Before VM: the internal VM's disk shares the device and goes first.
    std::shared_ptr<pv::api::ImageDevice> image_device;
    std::unique_ptr<pv::vmm::MicroVm> vm;
    bool confined = false;
    pv::Fd exit_event;
    std::atomic<bool> started{false};
    std::atomic<bool> ended{false};
    std::thread runner;
    std::mutex join_mutex;  // one thread joins RUNNER
    std::mutex mutex;       // guards RESULT
    std::optional<pv::Result<pv::vmm::RunSummary>> result;

    ~State() {
        if (runner.joinable()) {
            vm->request_stop(pv::vmm::ExitReason::Stopped, "the MicroVm was destroyed");
            runner.join();
        }
    }

    // Runs the VM on the calling thread and announces the end.
    void run_here() {
        auto outcome = vm->run();
        {
            std::lock_guard lock(mutex);
            result = std::move(outcome);
        }
        ended.store(true, std::memory_order_release);
        const uint64_t one = 1;
        (void)!::write(exit_event.get(), &one, sizeof(one));
    }
};

namespace {

using pv::api::to_public;

ExitReason to_public(pv::vmm::ExitReason reason) {
    switch (reason) {
        case pv::vmm::ExitReason::Reset:
            return ExitReason::Reset;
        case pv::vmm::ExitReason::PowerOff:
            return ExitReason::PowerOff;
        case pv::vmm::ExitReason::Timeout:
            return ExitReason::Timeout;
        case pv::vmm::ExitReason::TripleFault:
            return ExitReason::TripleFault;
        case pv::vmm::ExitReason::InternalError:
            return ExitReason::InternalError;
        case pv::vmm::ExitReason::FailEntry:
            return ExitReason::FailEntry;
        case pv::vmm::ExitReason::HostError:
            return ExitReason::HostError;
        case pv::vmm::ExitReason::Stopped:
            return ExitReason::Stopped;
    }
    return ExitReason::HostError;
}

RunSummary to_public(const pv::vmm::RunSummary& summary) {
    RunSummary result;
    result.reason = to_public(summary.reason);
    result.detail = summary.detail;
    result.wall_time = summary.wall_time;
    result.first_serial_byte = summary.first_serial_byte;
    result.exits = ExitCounts{summary.exits_io, summary.exits_mmio, summary.exits_unclaimed,
                              summary.exits_interrupted, summary.exits_other};
    result.peak_rss_kib = summary.peak_rss_kib;
    result.guest_resident_kib = summary.guest_resident_kib;
    result.disk_faults = summary.disk_faults;
    return result;
}

Result<RunSummary> outcome_of(const pv::Result<pv::vmm::RunSummary>& outcome) {
    if (!outcome)
        return tl::unexpected(to_public(outcome.error()));
    return to_public(*outcome);
}

pv::Result<void> check_config(const VmConfig::State& config) {
    if (config.disks > 1)
        return fail(pv::make_error("configure the microVM",
                                   "it has one virtio-blk disk; disk() was called " +
                                       std::to_string(config.disks) + " times"));
    if (config.vsocks > 1)
        return fail(pv::make_error("configure the microVM", "it has one virtio-vsock device"));
    return {};
}

pv::Result<std::unique_ptr<MicroVm::State>> create_state(VmConfig::State config) {
    PV_TRY(check_config(config));
    auto state = std::make_unique<MicroVm::State>();
    state->confined = config.config.confinement.any();
    // A confined VMM shares one malloc arena between its threads; set
    // before set-up starts any (imgfmt's write-behind workers).
    if (state->confined)
        PV_TRY(pv::vmm::confine::use_one_malloc_arena());
    const int event = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (event < 0)
        return fail(pv::errno_error("create the microVM's exit eventfd"));
    state->exit_event = pv::Fd(event);
    if (config.image) {
        state->image_device = std::make_shared<pv::api::ImageDevice>(std::move(*config.image));
        config.config.disk->device = state->image_device;
    }
    state->vm = PV_TRY(pv::vmm::MicroVm::create(config.config));
    return state;
}

Error usage(const std::string& what) {
    return Error{"run the microVM", what, 0};
}

}  // namespace

std::string_view to_string(ExitReason reason) {
    switch (reason) {
        case ExitReason::Reset:
            return pv::vmm::to_string(pv::vmm::ExitReason::Reset);
        case ExitReason::PowerOff:
            return pv::vmm::to_string(pv::vmm::ExitReason::PowerOff);
        case ExitReason::Timeout:
            return pv::vmm::to_string(pv::vmm::ExitReason::Timeout);
        case ExitReason::TripleFault:
            return pv::vmm::to_string(pv::vmm::ExitReason::TripleFault);
        case ExitReason::InternalError:
            return pv::vmm::to_string(pv::vmm::ExitReason::InternalError);
        case ExitReason::FailEntry:
            return pv::vmm::to_string(pv::vmm::ExitReason::FailEntry);
        case ExitReason::HostError:
            return pv::vmm::to_string(pv::vmm::ExitReason::HostError);
        case ExitReason::Stopped:
            return pv::vmm::to_string(pv::vmm::ExitReason::Stopped);
    }
    return "unknown";
}

MicroVm::MicroVm(std::unique_ptr<State> state) : m_state(std::move(state)) {}
MicroVm::MicroVm(MicroVm&& other) noexcept = default;
MicroVm& MicroVm::operator=(MicroVm&& other) noexcept = default;
MicroVm::~MicroVm() = default;

Result<MicroVm> MicroVm::create(VmConfig config) {
    if (!config.m_state)
        return tl::unexpected(Error{"create the microVM", "the VmConfig was moved from", 0});
    return to_public(create_state(std::move(*config.m_state)).map([](std::unique_ptr<State> state) {
        return MicroVm(std::move(state));
    }));
}

Result<RunSummary> MicroVm::run() {
    if (m_state->started.exchange(true))
        return tl::unexpected(usage("it was run or started already; a MicroVm runs once"));
    m_state->run_here();
    std::lock_guard lock(m_state->mutex);
    return outcome_of(*m_state->result);
}

Result<void> MicroVm::start() {
    if (m_state->confined)
        return tl::unexpected(
            usage("confinement applies to the whole process; use run() in a process that "
                  "exists to run this VM"));
    if (m_state->started.exchange(true))
        return tl::unexpected(usage("it was run or started already; a MicroVm runs once"));
    State* state = m_state.get();
    m_state->runner = std::thread([state] {
        pthread_setname_np(pthread_self(), "pv-vcpu0");
        state->run_here();
    });
    return {};
}

int MicroVm::exit_fd() const {
    return m_state->exit_event.get();
}

bool MicroVm::ended() const {
    return m_state->ended.load(std::memory_order_acquire);
}

Result<RunSummary> MicroVm::wait() {
    if (!m_state->started.load())
        return tl::unexpected(usage("it was not started"));
    {
        std::lock_guard join_lock(m_state->join_mutex);
        if (m_state->runner.joinable())
            m_state->runner.join();
    }
    std::lock_guard lock(m_state->mutex);
    if (!m_state->result)
        return tl::unexpected(usage("it is running on another thread's run()"));
    return outcome_of(*m_state->result);
}

void MicroVm::stop(std::string detail) {
    m_state->vm->request_stop(pv::vmm::ExitReason::Stopped, std::move(detail));
}

Result<Image> MicroVm::take_disk() {
    if (!m_state->image_device)
        return tl::unexpected(
            Error{"take back the disk", "no Image was given to VmConfig::disk", 0});
    if (m_state->started.load() && !ended())
        return tl::unexpected(Error{"take back the disk " + m_state->image_device->name(),
                                    "the VM is still running", 0});
    // A started run has ended; the runner thread may still be returning.
    if (m_state->started.load())
        (void)wait();
    return to_public(m_state->image_device->take());
}

}  // namespace patchvisor
