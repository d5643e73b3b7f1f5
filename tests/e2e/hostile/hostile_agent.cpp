// A hostile stand-in for pv-agent. Started like the agent (`NAME --socket
// PATH --disk DEVICE`), it speaks the agent protocol (proto/agent.proto)
// and plays a well-behaved Debian guest with libssl3 and openssl at
// 3.0.20-1~deb12u2, until the phase named in its behaviour, where it
// misbehaves. The jail passes no environment and names the program by its
// file name, so the behaviour comes from the name ("hostile-BEHAVIOUR" or
// "hostile-BEHAVIOUR@PHASE", a symlink to this binary) or from
// `--behaviour BEHAVIOUR[@PHASE]`.
//
// Behaviours: normal (answers every request as the agent would, but
// installs nothing), oversize (a frame length over 4 MiB), endless-logs,
// out-of-order (the answer carries the next request's id), unsolicited (an
// extra message after the answer), wrong-reply (a Hello where another answer
// belongs), silence (reads, never answers), trickle (the answer one byte
// every 100 ms), huge-list (250 000 packages), huge-string (a 3 MiB agent
// version in Hello), early-close (closes the connection instead of
// answering), and three that answer Apply with success and report the new
// versions from then on, doing something else to the guest's disk:
// lies-installed-nothing (leaves it alone), lies-other-version (writes
// another version of each staged package into dpkg's status file) and
// writes-status (writes the staged versions there, as a package manager that
// only updated its database would). Phases: hello, inspect, stage, apply,
// finish; each behaviour has a default (see default_phase).

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <thread>

#include "proto/framing.hpp"
#include "tests/e2e/hostile/guest_disk.hpp"

namespace {

using pv::wire::Envelope;

struct Plan {
    std::string behaviour = "normal";
    std::string phase;
    std::string disk;  // --disk: the guest's disk, a loop device in the jail
};

std::string default_phase(const std::string& behaviour) {
    if (behaviour == "normal")
        return "";
    if (behaviour == "oversize" || behaviour == "huge-string" || behaviour == "silence")
        return "hello";
    if (behaviour == "endless-logs" || behaviour.starts_with("lies-") ||
        behaviour == "writes-status")
        return "apply";
    if (behaviour == "unsolicited")
        return "hello";
    return "inspect";
}

Plan plan_from(int argc, char** argv) {
    std::string spec;
    const char* slash = std::strrchr(argv[0], '/');
    const std::string name = slash ? slash + 1 : argv[0];
    if (name.rfind("hostile-", 0) == 0)
        spec = name.substr(8);
    Plan plan;
    for (int i = 1; i + 1 < argc; ++i) {
        if (std::strcmp(argv[i], "--behaviour") == 0)
            spec = argv[i + 1];
        if (std::strcmp(argv[i], "--disk") == 0)
            plan.disk = argv[i + 1];
    }
    if (spec.empty())
        return plan;
    const auto at = spec.find('@');
    plan.behaviour = spec.substr(0, at);
    plan.phase = at == std::string::npos ? default_phase(plan.behaviour) : spec.substr(at + 1);
    return plan;
}

std::string socket_path(int argc, char** argv) {
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], "--socket") == 0)
            return argv[i + 1];
    return "";
}

int connect_to(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0)
        return -1;
    return fd;
}

// False once the host has gone away.
bool send_bytes(int fd, const std::string& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + sent, bytes.size() - sent);
        if (n <= 0)
            return false;
        sent += static_cast<size_t>(n);
    }
    return true;
}

bool send(int fd, const Envelope& envelope) {
    auto frame = pv::proto::encode_frame(envelope);
    return frame && send_bytes(fd, *frame);
}

Envelope log_line(uint64_t id, const std::string& line) {
    Envelope log;
    log.set_request_id(id);
    log.mutable_log()->set_stream(pv::wire::Log::STREAM_STDOUT);
    log.mutable_log()->set_line(line);
    return log;
}

class Guest {
  public:
    explicit Guest(Plan plan) : m_plan(std::move(plan)) {}

    // Answers one request; false when the conversation is over.
    bool answer(int fd, const Envelope& request) {
        const std::string phase = phase_of(request);
        Envelope reply = well_behaved(request);
        // What dpkg would print, as pv-agent forwards it.
        if (request.has_apply() && !send(fd, log_line(request.request_id(), "Setting up libssl3")))
            return false;
        if (phase != m_plan.phase || m_plan.behaviour == "normal")
            return send(fd, reply) && !request.has_finish();
        return misbehave(fd, request, std::move(reply));
    }

  private:
    std::string phase_of(const Envelope& request) {
        switch (request.body_case()) {
            case Envelope::kHello:
                return "hello";
            case Envelope::kInspect:
                return "inspect";
            case Envelope::kStageChunk:
                return "stage";
            case Envelope::kApply:
                return "apply";
            case Envelope::kFinish:
                return "finish";
            default:
                return "other";
        }
    }

    Envelope well_behaved(const Envelope& request) {
        Envelope reply;
        reply.set_request_id(request.request_id());
        if (request.has_hello()) {
            reply.mutable_hello()->set_major(pv::proto::kProtocolMajor);
            reply.mutable_hello()->set_agent_version("hostile-double");
            reply.mutable_hello()->set_kernel("none");
            reply.mutable_hello()->set_sandbox("jail");
        } else if (request.has_inspect()) {
            auto* result = reply.mutable_inspect_result();
            (*result->mutable_os_release())["ID"] = "debian";
            (*result->mutable_os_release())["VERSION_ID"] = "12";
            (*result->mutable_os_release())["PRETTY_NAME"] = "Debian GNU/Linux 12 (bookworm)";
            result->set_package_manager(pv::wire::PACKAGE_MANAGER_DPKG);
            for (const auto& [name, version] : m_versions) {
                auto* package = result->add_packages();
                package->set_name(name);
                package->set_version(version);
                package->set_architecture("amd64");
                package->set_status("install ok installed");
            }
        } else if (request.has_stage_chunk()) {
            m_staged.push_back(request.stage_chunk().name());
            reply.mutable_result();
        } else if (request.has_apply()) {
            // NAME_VERSION_ARCH.deb: the versions Inspect shows from now on.
            for (const auto& file : m_staged) {
                const auto first = file.find('_');
                const auto second = file.find('_', first + 1);
                if (first != std::string::npos && second != std::string::npos)
                    m_versions[file.substr(0, first)] = file.substr(first + 1, second - first - 1);
            }
            reply.mutable_result()->set_message("Setting up libssl3 (hostile double)\n");
        } else {
            reply.mutable_result();
        }
        return reply;
    }

    bool misbehave(int fd, const Envelope& request, Envelope reply);
    // Apply answered with success, whatever was done to the disk.
    bool lie_about_apply(int fd, const Envelope& reply);

    Plan m_plan;
    std::vector<std::string> m_staged;
    std::map<std::string, std::string> m_versions{{"libssl3", "3.0.20-1~deb12u2"},
                                                  {"openssl", "3.0.20-1~deb12u2"}};
};

bool Guest::misbehave(int fd, const Envelope& request, Envelope reply) {
    const std::string& behaviour = m_plan.behaviour;
    const uint64_t id = request.request_id();
    if (behaviour == "oversize") {
        // A length of 4 MiB + 1, then bytes that never make up the frame.
        return send_bytes(fd, std::string("\x00\x40\x00\x01", 4) + std::string(4096, 'x'));
    }
    if (behaviour == "endless-logs") {
        for (uint64_t line = 0;; ++line)
            if (!send(fd, log_line(id, "endless output line " + std::to_string(line) +
                                           std::string(80, '.'))))
                return false;
    }
    if (behaviour == "out-of-order") {
        reply.set_request_id(id + 1);
        return send(fd, reply);
    }
    if (behaviour == "unsolicited")
        return send(fd, reply) && send(fd, log_line(id, "nobody asked for this"));
    if (behaviour == "wrong-reply") {
        Envelope hello;
        hello.set_request_id(id);
        hello.mutable_hello()->set_major(pv::proto::kProtocolMajor);
        return send(fd, hello);
    }
    if (behaviour == "silence")
        return true;
    if (behaviour == "trickle") {
        const auto frame = pv::proto::encode_frame(reply);
        for (char byte : *frame) {
            if (!send_bytes(fd, std::string(1, byte)))
                return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        return true;
    }
    if (behaviour == "huge-list" && reply.has_inspect_result()) {
        for (int i = 0; i < 250'000; ++i)
            reply.mutable_inspect_result()->add_packages()->set_name("p" + std::to_string(i));
        return send(fd, reply);
    }
    if (behaviour == "huge-string" && reply.has_hello()) {
        reply.mutable_hello()->set_agent_version(std::string(3 << 20, 'v'));
        return send(fd, reply);
    }
    if (behaviour == "early-close")
        return false;
    if ((behaviour.starts_with("lies-") || behaviour == "writes-status") && request.has_apply())
        return lie_about_apply(fd, reply);
    std::fprintf(stderr, "hostile agent: no behaviour %s at %s\n", behaviour.c_str(),
                 m_plan.phase.c_str());
    return false;
}

bool Guest::lie_about_apply(int fd, const Envelope& reply) {
    const std::string& behaviour = m_plan.behaviour;
    // From now on Inspect shows the staged versions (well_behaved); what
    // the disk holds is another matter.
    std::map<std::string, std::string> written;
    for (const auto& file : m_staged) {
        const auto name = file.substr(0, file.find('_'));
        written[name] = m_versions[name] + (behaviour == "lies-other-version" ? "+other1" : "");
    }
    if (behaviour != "lies-installed-nothing" && !pv::hostile::write_versions(m_plan.disk, written))
        return false;
    return send(fd, reply);
}

}  // namespace

int main(int argc, char** argv) {
    ::signal(SIGPIPE, SIG_IGN);
    const Plan plan = plan_from(argc, argv);
    std::fprintf(stderr, "hostile agent: %s at %s\n", plan.behaviour.c_str(), plan.phase.c_str());
    const int fd = connect_to(socket_path(argc, argv));
    if (fd < 0) {
        std::perror("hostile agent: connect");
        return 2;
    }
    Guest guest(plan);
    pv::proto::FrameDecoder decoder;
    char buffer[65536];
    for (;;) {
        const ssize_t got = ::read(fd, buffer, sizeof buffer);
        if (got <= 0 || !decoder.feed(buffer, static_cast<size_t>(got)))
            return 0;
        for (;;) {
            auto popped = decoder.pop();
            if (!popped || !*popped)
                break;
            if (!guest.answer(fd, **popped)) {
                ::close(fd);
                return 0;
            }
        }
    }
}
