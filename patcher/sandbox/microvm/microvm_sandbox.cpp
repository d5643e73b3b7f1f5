#include "patcher/sandbox/microvm/microvm_sandbox.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <utility>

#include <fmt/format.h>

#include "patcher/sandbox/unix_socket.hpp"

namespace pv::sandbox {

namespace {

using namespace std::chrono_literals;
using Clock = MicroVmSandbox::Clock;

// The VMM enforces the deadline itself (--timeout-s); we kill it only if it
// has not ended this long after.
constexpr auto kDeadlineSlack = 5s;
// How much of the VMM's stderr and of the guest console's end is read back.
constexpr size_t kTailBytes = 64 * 1024;

Result<Fd> memory_file(const char* name) {
    Fd file(::memfd_create(name, MFD_CLOEXEC));
    if (!file.valid())
        return fail(errno_error(std::string("memfd_create ") + name));
    return file;
}

// Up to kTailBytes from the end of FD (a file or memfd); "" when unreadable.
std::string read_tail(int fd) {
    struct stat status {};
    if (fd < 0 || ::fstat(fd, &status) != 0)
        return "";
    const auto size = static_cast<uint64_t>(status.st_size);
    const uint64_t start = size > kTailBytes ? size - kTailBytes : 0;
    std::string text(size - start, '\0');
    if (!pread_all(fd, text.data(), text.size(), start, "read tail"))
        return "";
    return text;
}

Result<void> remove_socket(const std::string& path) {
    if (path.empty() || ::unlink(path.c_str()) == 0 || errno == ENOENT)
        return {};
    return fail(errno_error("remove " + path));
}

}  // namespace

MicroVmSandbox::MicroVmSandbox(RuntimeDir dir, std::string log_path, Clock::time_point deadline)
    : m_dir(std::move(dir)),
      m_runtime_path(m_dir.path()),
      m_log_path(std::move(log_path)),
      m_uds_path(m_runtime_path + "/vsock.sock"),
      m_port_socket_path(port_socket_path(m_uds_path, kAgentPort)),
      m_deadline(deadline) {}

Result<std::unique_ptr<MicroVmSandbox>> MicroVmSandbox::start(img::BlockDevice& overlay,
                                                              const MicroVmSetup& setup,
                                                              const SandboxOptions& options,
                                                              const std::string& reason) {
    const auto deadline = Clock::now() + options.timeout;
    RuntimeDir dir = PV_TRY(RuntimeDir::create(options.runtime_root));
    std::string log_path = options.log_path.empty()
                               ? fmt::format("/tmp/patchvisor-agent-{}.log", dir.tag())
                               : options.log_path;
    std::unique_ptr<MicroVmSandbox> vm(
        new MicroVmSandbox(std::move(dir), std::move(log_path), deadline));
    // From here on a failure tears down whatever was set up, in order.
    // The hand-over (sandbox.hpp): everything the job's object wrote is in
    // the file before another process opens it.
    PV_TRY(overlay.flush());
    PV_TRY(vm->listen_for_agent());
    PV_TRY(vm->start_vmm(overlay, setup));
    PV_TRY(vm->accept_agent(std::min(options.connect_timeout, options.timeout)));
    vm->m_description = fmt::format(
        "microvm: pv-agent in a Linux microVM (patchvisor-vmm pid {}, kernel {}), disk {} as "
        "virtio-blk, vsock CID {} over {}, no network device; chosen because {}",
        vm->m_vmm->pid(), setup.kernel_path, overlay.name(), kGuestCid, vm->m_uds_path, reason);
    return vm;
}

Result<void> MicroVmSandbox::listen_for_agent() {
    m_listener = PV_TRY(listen_on(m_port_socket_path));
    m_vmm_stdout = PV_TRY(memory_file("patchvisor-vmm-stdout"));
    m_vmm_stderr = PV_TRY(memory_file("patchvisor-vmm-stderr"));
    // Ours, 0600, and empty: the VMM appends the guest console to it.
    (void)PV_TRY(Fd::open(m_log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600));
    return {};
}

Result<void> MicroVmSandbox::start_vmm(const img::BlockDevice& overlay, const MicroVmSetup& setup) {
    VmmCommand command;
    command.setup = setup;
    command.disk_path = overlay.name();
    command.disk_read_only = overlay.read_only();
    command.vsock_uds = m_uds_path;
    command.serial_log = m_log_path;
    command.timeout = std::chrono::ceil<std::chrono::milliseconds>(
        std::max(m_deadline - Clock::now(), Clock::duration(1ms)));
    VmmLaunch launch;
    launch.program = setup.vmm_path;
    launch.arguments = vmm_arguments(command);
    launch.stdout_fd = m_vmm_stdout.get();
    launch.stderr_fd = m_vmm_stderr.get();
    m_vmm.emplace(PV_TRY(VmmProcess::spawn(launch)));
    return {};
}

Result<void> MicroVmSandbox::accept_agent(std::chrono::milliseconds timeout) {
    const ChildConnection connection{
        m_listener.get(), m_port_socket_path, m_vmm->pid(), m_vmm->pidfd(), timeout, m_log_path};
    m_stream = PV_TRY(accept_child(connection, [this]() -> Result<void> {
        if (!m_vmm->peek())
            return {};
        const AgentOutcome ended = finish_vmm(false);
        return fail(make_error("start the agent", "patchvisor-vmm " + ended.describe() +
                                                      " before the agent connected; see " +
                                                      m_log_path));
    }));
    // One agent per VM: later guest connections to the port find no socket
    // (the VMM answers them with RST); the connection made stays.
    m_listener.reset();
    return remove_socket(m_port_socket_path);
}

MicroVmSandbox::~MicroVmSandbox() {
    if (auto done = teardown(); !done)
        std::fprintf(stderr, "patchvisor: microvm teardown: %s\n", done.error().message().c_str());
}

AgentOutcome MicroVmSandbox::outcome_of(const ChildEnd& end, bool killed) const {
    VmmEnd vmm;
    vmm.process = end;
    vmm.summary_json = read_tail(m_vmm_stdout.get());
    vmm.stderr_text = read_tail(m_vmm_stderr.get());
    if (auto log = Fd::open(m_log_path, O_RDONLY))
        vmm.serial_tail = read_tail(log->get());
    vmm.killed_by_sandbox = killed;
    vmm.past_deadline = Clock::now() >= m_deadline;
    return agent_outcome(vmm);
}

std::optional<AgentOutcome> MicroVmSandbox::outcome() const {
    if (m_ended)
        return m_ended;
    if (!m_vmm)
        return std::nullopt;
    if (const auto end = m_vmm->peek())
        return outcome_of(*end, false);
    return std::nullopt;
}

AgentOutcome MicroVmSandbox::finish_vmm(bool kill) {
    if (m_ended)
        return *m_ended;
    if (!m_vmm) {
        m_ended = AgentOutcome{Ending::Stopped, 0, 0, "patchvisor-vmm never started"};
        return *m_ended;
    }
    bool killed = false;
    if (kill && !m_vmm->peek()) {
        if (auto sent = m_vmm->kill(); !sent)
            std::fprintf(stderr, "patchvisor: %s\n", sent.error().message().c_str());
        killed = true;
    }
    auto reaped = m_vmm->reap(true);
    if (!reaped || !*reaped) {
        m_ended = AgentOutcome{
            Ending::Stopped, 0, 0,
            reaped ? std::string() : "could not reap patchvisor-vmm: " + reaped.error().message()};
        return *m_ended;
    }
    m_ended = outcome_of(**reaped, killed);
    return *m_ended;
}

AgentOutcome MicroVmSandbox::wait(std::chrono::milliseconds grace) {
    if (m_ended || !m_vmm)
        return finish_vmm(false);
    const auto until = std::min(Clock::now() + grace, m_deadline + kDeadlineSlack);
    while (!m_vmm->peek()) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now());
        if (left.count() <= 0)
            break;
        pollfd watched{m_vmm->pidfd(), POLLIN, 0};
        (void)::poll(&watched, 1, static_cast<int>(std::min<int64_t>(left.count(), 1 << 30)));
    }
    return finish_vmm(true);
}

Result<void> MicroVmSandbox::append_vmm_errors() const {
    const std::string errors = read_tail(m_vmm_stderr.get());
    if (errors.empty())
        return {};
    Fd log = PV_TRY(Fd::open(m_log_path, O_WRONLY | O_APPEND));
    const std::string text = "\n[patchvisor-vmm] " + errors + (errors.back() == '\n' ? "" : "\n");
    if (::write(log.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        return fail(errno_error("append to " + m_log_path));
    return {};
}

Result<AgentOutcome> MicroVmSandbox::teardown() {
    if (m_torn_down)
        return *m_ended;
    m_torn_down = true;
    // The VMM first: once it is reaped it no longer writes the overlay.
    const AgentOutcome ended = finish_vmm(true);
    m_vmm.reset();
    m_stream.reset();
    m_listener.reset();
    Result<void> first;
    keep_first(first, remove_socket(m_port_socket_path));
    keep_first(first, remove_socket(m_uds_path));
    keep_first(first, append_vmm_errors());
    keep_first(first, m_dir.remove());
    if (!first)
        return fail(with_context(first.error(), "tear down microvm"));
    return ended;
}

}  // namespace pv::sandbox
