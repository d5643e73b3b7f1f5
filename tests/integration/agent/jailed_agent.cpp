#include "jailed_agent.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "support.hpp"

namespace pv::test {

std::string jail_unavailable_reason() {
    if (geteuid() != 0)
        return "needs root for namespaces, loop devices and mounts";
    if (access("/dev/loop-control", R_OK | W_OK) != 0)
        return "no /dev/loop-control";
    const auto probe = run("unshare -m -p -n --fork true");
    if (probe.exit_code != 0)
        return "unshare -m -p -n --fork does not work here: " + probe.output;
    return "";
}

std::string version_of(const wire::InspectResult& inventory, const std::string& name) {
    for (const auto& package : inventory.packages()) {
        if (package.name() == name)
            return package.version();
    }
    return "";
}

namespace {

Result<Fd> listen_unix(const std::string& path) {
    Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        listen(fd.get(), 1) != 0)
        return fail(errno_error("listen on " + path));
    return fd;
}

}  // namespace

Result<JailedAgent> JailedAgent::start(const std::string& image, const std::string& workdir) {
    JailedAgent agent;
    const auto attached = run("losetup -f --show " + quote(image));
    if (attached.exit_code != 0)
        return fail(make_error("losetup " + image, attached.output));
    agent.m_loop = attached.output.substr(0, attached.output.find('\n'));
    const std::string socket_path = workdir + "/agent.sock";
    agent.m_log_path = workdir + "/agent.log";
    Fd listener = PV_TRY(listen_unix(socket_path));
    const std::string binary = built_binary("agent/pv-agent");
    agent.m_pid = fork();
    if (agent.m_pid == 0) {
        const int log = open(agent.m_log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(log, STDOUT_FILENO);
        dup2(log, STDERR_FILENO);
        execlp("unshare", "unshare", "-m", "-p", "-n", "--fork", "--kill-child", binary.c_str(),
               "--socket", socket_path.c_str(), "--disk", agent.m_loop.c_str(), nullptr);
        _exit(127);
    }
    pollfd ready{listener.get(), POLLIN, 0};
    if (poll(&ready, 1, 30000) != 1)
        return fail(make_error("wait for pv-agent to connect", agent.log()));
    agent.m_connection = Fd(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!agent.m_connection.valid())
        return fail(errno_error("accept pv-agent"));
    return agent;
}

JailedAgent::JailedAgent(JailedAgent&& other) noexcept
    : m_pid(std::exchange(other.m_pid, -1)),
      m_loop(std::exchange(other.m_loop, {})),
      m_log_path(std::move(other.m_log_path)),
      m_connection(std::move(other.m_connection)) {}

int JailedAgent::wait_and_detach() {
    int status = -1;
    if (m_pid > 0) {
        // A stuck agent must not hang the test: give it a while, then kill.
        for (int i = 0; i < 300 && waitpid(m_pid, &status, WNOHANG) == 0; ++i)
            usleep(100 * 1000);
        if (kill(m_pid, 0) == 0) {
            kill(m_pid, SIGKILL);
            waitpid(m_pid, &status, 0);
        }
        m_pid = -1;
    }
    if (!m_loop.empty())
        (void)run("losetup -d " + quote(m_loop));
    m_loop.clear();
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

JailedAgent::~JailedAgent() {
    m_connection.reset();
    if (m_pid > 0)
        kill(m_pid, SIGKILL);
    (void)wait_and_detach();
}

std::string JailedAgent::log() const {
    std::ifstream in(m_log_path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

Result<void> RawClient::send(const wire::Envelope& envelope) {
    return send_bytes(PV_TRY(proto::encode_frame(envelope)));
}

Result<void> RawClient::send_bytes(const std::string& bytes) {
    if (::send(m_fd.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(bytes.size()))
        return fail(errno_error("send to agent"));
    return {};
}

Result<wire::Envelope> RawClient::receive_terminal() {
    char buffer[65536];
    for (;;) {
        auto popped = PV_TRY(m_decoder.pop());
        if (popped) {
            if (popped->has_log() || popped->has_progress())
                continue;
            return std::move(*popped);
        }
        pollfd ready{m_fd.get(), POLLIN, 0};
        if (poll(&ready, 1, 60000) != 1)
            return fail(make_error("receive from agent", "timed out"));
        const ssize_t got = read(m_fd.get(), buffer, sizeof buffer);
        if (got <= 0)
            return fail(m_decoder.end_of_stream_error());
        PV_TRY(m_decoder.feed(buffer, static_cast<size_t>(got)));
    }
}

}  // namespace pv::test
