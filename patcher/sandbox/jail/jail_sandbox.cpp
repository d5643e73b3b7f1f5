#include "patcher/sandbox/jail/jail_sandbox.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <utility>

#include <fmt/format.h>

#include "patcher/sandbox/jail/jail_root.hpp"
#include "patcher/sandbox/unix_socket.hpp"

namespace pv::sandbox {

namespace {

using namespace std::chrono_literals;
using Clock = Supervisor::Clock;

// How long the kernel may take to let go of the loop device once the
// agent's mount namespace is gone, and for partition nodes to appear.
constexpr auto kDetachTimeout = 10s;
constexpr auto kPartitionTimeout = 5s;

std::string base_name(const std::string& path) {
    const size_t slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

Result<std::unique_ptr<JailSandbox>> JailSandbox::start(img::BlockDevice& overlay,
                                                        const SandboxOptions& options,
                                                        const std::string& reason) {
    const auto deadline = Clock::now() + options.timeout;
    RuntimeDir dir = PV_TRY(RuntimeDir::create(options.runtime_root));
    std::string log_path = options.log_path.empty()
                               ? fmt::format("/tmp/patchvisor-agent-{}.log", dir.tag())
                               : options.log_path;
    std::unique_ptr<JailSandbox> jail(
        new JailSandbox(std::move(dir), std::move(log_path), deadline));
    // From here on a failure tears down whatever was set up, in order.
    PV_TRY(jail->attach_disk(overlay));
    jail->m_listener = PV_TRY(listen_on(jail->m_dir.socket_path()));
    PV_TRY(jail->start_agent(options));
    PV_TRY(jail->accept_agent(std::min(options.connect_timeout, options.timeout)));
    jail->m_description = fmt::format(
        "jail: pv-agent as PID 1 of new mount, pid, ipc, uts and network (loopback only) "
        "namespaces in a minimal root, with reduced capabilities and a seccomp filter, disk {} "
        "over a FUSE export of {}; weaker isolation than the microVM (the host kernel reads "
        "the guest filesystem and runs its maintainer scripts as root); chosen because {}",
        jail->m_disk_path, overlay.name(), reason);
    return jail;
}

Result<void> JailSandbox::attach_disk(img::BlockDevice& overlay) {
    m_export = PV_TRY(FuseExport::start(overlay, m_dir.export_dir(), "patchvisor-" + m_dir.tag()));
    const Access access = overlay.read_only() ? Access::ReadOnly : Access::ReadWrite;
    m_loop = PV_TRY(LoopDevice::attach(m_export->file_path(), access));
    m_disk_path = m_loop->path();
    // The agent looks for partition nodes as soon as it starts.
    m_partition_paths = PV_TRY(m_loop->wait_for_partitions(kPartitionTimeout));
    return {};
}

Result<void> JailSandbox::start_agent(const SandboxOptions& options) {
    Fd log = PV_TRY(Fd::open(m_log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600));
    JailSpec spec;
    spec.program = options.agent_path;
    spec.arguments = {base_name(options.agent_path), "--socket", kJailSocketPath, "--disk",
                      m_disk_path};
    spec.disk_nodes = m_partition_paths;
    spec.disk_nodes.insert(spec.disk_nodes.begin(), m_disk_path);
    spec.socket_path = m_dir.socket_path();
    spec.log_fd = log.get();
    m_supervisor = PV_TRY(Supervisor::start(std::move(spec), m_deadline));
    return {};
}

Result<void> JailSandbox::accept_agent(std::chrono::milliseconds timeout) {
    const ChildConnection connection{m_listener.get(), m_dir.socket_path(), m_supervisor->pid(), -1,
                                     timeout,          m_log_path};
    m_stream = PV_TRY(accept_child(connection, [this]() -> Result<void> {
        if (auto ended = m_supervisor->outcome())
            return fail(make_error("start the agent", "it " + ended->describe() +
                                                          " before connecting; see " + m_log_path));
        return {};
    }));
    // The socket file is of no use any more; the connection stays.
    m_listener.reset();
    if (::unlink(m_dir.socket_path().c_str()) != 0)
        return fail(errno_error("remove " + m_dir.socket_path()));
    return {};
}

JailSandbox::~JailSandbox() {
    if (auto done = teardown(); !done)
        std::fprintf(stderr, "patchvisor: jail teardown: %s\n", done.error().message().c_str());
}

std::optional<AgentOutcome> JailSandbox::outcome() const {
    if (m_final_outcome)
        return m_final_outcome;
    return m_supervisor ? m_supervisor->outcome() : std::nullopt;
}

AgentOutcome JailSandbox::wait(std::chrono::milliseconds grace) {
    if (m_final_outcome)
        return *m_final_outcome;
    if (!m_supervisor)
        return AgentOutcome{Ending::Stopped, 0, 0};
    return m_supervisor->wait_until(std::min(Clock::now() + grace, m_deadline));
}

Result<AgentOutcome> JailSandbox::teardown() {
    if (m_torn_down)
        return *m_final_outcome;
    m_torn_down = true;
    // The agent first: PID 1's death takes the pid namespace, and the last
    // process's exit the mount namespace, with any mount of the disk.
    m_final_outcome = m_supervisor ? m_supervisor->stop() : AgentOutcome{Ending::Stopped, 0, 0};
    m_supervisor.reset();
    m_stream.reset();
    m_listener.reset();
    Result<void> first;
    if (m_loop)
        keep_first(first, m_loop->detach(kDetachTimeout));
    if (m_export)
        keep_first(first, m_export->stop());
    m_loop.reset();
    m_export.reset();
    keep_first(first, m_dir.remove());
    if (!first)
        return fail(with_context(first.error(), "tear down jail"));
    return *m_final_outcome;
}

}  // namespace pv::sandbox
