#include "agent/server.hpp"

#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/apply.hpp"
#include "agent/guest_files.hpp"
#include "agent/inventory.hpp"

namespace pv::agent {

namespace {

constexpr const char* kAgentVersion = "0.1.0";

wire::Envelope ok_result(int exit_code = 0, std::string message = {}) {
    wire::Envelope reply;
    auto* result = reply.mutable_result();
    result->set_status(wire::Result::STATUS_OK);
    result->set_exit_code(exit_code);
    result->set_message(std::move(message));
    return reply;
}

wire::Envelope error_envelope(uint64_t request_id, wire::Error::Code code, std::string message,
                              int exit_code = 0) {
    wire::Envelope reply;
    reply.set_request_id(request_id);
    auto* error = reply.mutable_error();
    error->set_code(code);
    error->set_message(std::move(message));
    error->set_exit_code(exit_code);
    return reply;
}

// As PID 1 the agent inherits every orphan; reap them so none linger.
void reap_orphans() {
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }
}

// A failed command is an Error carrying its exit status and last lines, so
// the host can show dpkg's own reason.
Result<wire::Envelope> command_reply(const std::string& what, const CommandOutcome& outcome) {
    if (outcome.exit_code == 0)
        return ok_result(0, outcome.output_tail);
    return fail(Error{what + " exited with status " + std::to_string(outcome.exit_code),
                      outcome.output_tail, -outcome.exit_code});
}

}  // namespace

wire::Error::Code error_code_for(const Error& error) {
    if (error.code < 0)
        return wire::Error::CODE_COMMAND_FAILED;
    switch (error.code) {
        case EPROTO:
        case EPERM:
        case EINVAL:
            return wire::Error::CODE_BAD_REQUEST;
        case ENOMSG:
        case ENOTSUP:
            return wire::Error::CODE_UNSUPPORTED;
        case EBADMSG:
            return wire::Error::CODE_CHECKSUM;
        case EFBIG:
        case EMSGSIZE:
            return wire::Error::CODE_LIMIT;
        case ENODEV:
            return wire::Error::CODE_NO_ROOT;
        default:
            return wire::Error::CODE_IO;
    }
}

Result<void> Server::serve() {
    while (!m_finished) {
        auto request = m_channel.receive();
        if (!request) {
            // A whole frame that did not parse leaves the stream in step:
            // answer it and go on. Anything else ends the conversation.
            if (request.error().code != EBADMSG && request.error().code != ENOMSG)
                return fail(request.error());
            PV_TRY(m_channel.send(
                error_envelope(0, error_code_for(request.error()), request.error().message())));
            continue;
        }
        m_request_id = request->request_id();
        auto reply = handle(*request);
        reap_orphans();
        if (!reply) {
            const Error& error = reply.error();
            const int exit_code = error.code < 0 ? -error.code : 0;
            PV_TRY(m_channel.send(
                error_envelope(m_request_id, error_code_for(error), error.message(), exit_code)));
            continue;
        }
        reply->set_request_id(m_request_id);
        PV_TRY(m_channel.send(*reply));
    }
    return {};
}

Result<wire::Envelope> Server::handle(const wire::Envelope& request) {
    if (request.request_id() == 0)
        return fail(Error{"request", "request_id 0 is reserved for unsolicited messages", EPROTO});
    switch (request.body_case()) {
        case wire::Envelope::kHello:
            return hello(request.hello());
        case wire::Envelope::kInspect:
            return inspect();
        case wire::Envelope::kReadFile:
            return read_file(request.read_file());
        case wire::Envelope::kStageChunk:
            return stage(request.stage_chunk());
        case wire::Envelope::kApply:
            return apply(request.apply());
        case wire::Envelope::kRun:
            return run(request.run());
        case wire::Envelope::kFinish:
            return finish();
        default:
            return fail(Error{"request", proto::body_name(request) + " is not a request", ENOTSUP});
    }
}

Result<wire::Envelope> Server::hello(const wire::Hello& request) {
    if (request.major() != proto::kProtocolMajor)
        return fail(Error{"hello",
                          "host speaks protocol " + std::to_string(request.major()) +
                              ".x, agent speaks " + std::to_string(proto::kProtocolMajor) + ".x",
                          ENOTSUP});
    wire::Envelope reply;
    auto* hello = reply.mutable_hello();
    hello->set_major(proto::kProtocolMajor);
    hello->set_minor(proto::kProtocolMinor);
    hello->set_agent_version(kAgentVersion);
    hello->set_sandbox(m_options.sandbox);
    utsname names{};
    if (uname(&names) == 0)
        hello->set_kernel(names.release);
    return reply;
}

Result<std::string> Server::root() {
    if (m_finished)
        return fail(Error{"guest root", "already finished", EPROTO});
    if (!m_root) {
        auto mounted = MountedRoot::find_and_mount(m_options.disk, m_options.mountpoint);
        if (!mounted)
            return fail(Error{mounted.error().operation, mounted.error().detail, ENODEV});
        m_root.emplace(std::move(*mounted));
    }
    return m_root->path();
}

Result<Stager*> Server::stager() {
    const std::string path = PV_TRY(root());
    if (!m_stager)
        m_stager.emplace(PV_TRY(Stager::create(path)));
    return &*m_stager;
}

Result<wire::Envelope> Server::inspect() {
    const std::string path = PV_TRY(root());
    wire::Envelope reply;
    *reply.mutable_inspect_result() = PV_TRY(agent::inspect(path));
    reply.mutable_inspect_result()->set_root_device(m_root->device());
    reply.mutable_inspect_result()->set_filesystem(m_root->filesystem());
    m_package_manager = reply.inspect_result().package_manager();
    return reply;
}

Result<wire::Envelope> Server::read_file(const wire::ReadFile& request) {
    const std::string path = PV_TRY(root());
    wire::Envelope reply;
    *reply.mutable_file_data() = PV_TRY(read_guest_path(path, request.path(), request.offset()));
    return reply;
}

Result<wire::Envelope> Server::stage(const wire::StageChunk& chunk) {
    Stager* staging = PV_TRY(stager());
    const bool complete = PV_TRY(staging->write_chunk(chunk));
    return ok_result(0, complete ? "staged " + chunk.name() : std::string{});
}

void Server::send_log(wire::Log::Stream stream, std::string_view line) {
    wire::Envelope envelope;
    envelope.set_request_id(m_request_id);
    envelope.mutable_log()->set_stream(stream);
    envelope.mutable_log()->set_line(std::string(line));
    // A broken stream is noticed by the next receive; logging goes on.
    (void)m_channel.send(envelope);
}

Result<wire::Envelope> Server::apply(const wire::Apply& request) {
    if (request.action() != wire::Apply::ACTION_INSTALL)
        return fail(Error{"apply", "unknown action", ENOTSUP});
    Stager* staging = PV_TRY(stager());
    std::vector<std::string> paths;
    for (const auto& name : request.files())
        paths.push_back(PV_TRY(staging->staged_path(name)));
    wire::PackageManager manager = request.package_manager();
    if (manager == wire::PACKAGE_MANAGER_UNKNOWN) {
        if (m_package_manager == wire::PACKAGE_MANAGER_UNKNOWN)
            m_package_manager = PV_TRY(agent::inspect(m_root->path())).package_manager();
        manager = m_package_manager;
    }
    const auto outcome = PV_TRY(install_packages(
        m_root->path(), manager, paths, [&](LogStream stream, std::string_view line) {
            send_log(
                stream == LogStream::Stdout ? wire::Log::STREAM_STDOUT : wire::Log::STREAM_STDERR,
                line);
        }));
    const std::string what = manager == wire::PACKAGE_MANAGER_DPKG ? "dpkg -i" : "rpm -U";
    return command_reply(what, outcome);
}

Result<wire::Envelope> Server::run(const wire::Run& request) {
    const std::vector<std::string> argv(request.argv().begin(), request.argv().end());
    const std::string path = PV_TRY(root());
    const auto outcome =
        PV_TRY(run_allowed(path, argv, [&](LogStream stream, std::string_view line) {
            send_log(
                stream == LogStream::Stdout ? wire::Log::STREAM_STDOUT : wire::Log::STREAM_STDERR,
                line);
        }));
    return command_reply(argv.front(), outcome);
}

Result<wire::Envelope> Server::finish() {
    if (m_stager) {
        PV_TRY(m_stager->remove_all());
        m_stager.reset();
    }
    sync();
    if (m_root) {
        PV_TRY(m_root->unmount());
        m_root.reset();
    }
    m_finished = true;
    return ok_result(0, "guest filesystem synced and unmounted");
}

void Server::cleanup() {
    if (m_stager)
        (void)m_stager->remove_all();
    m_stager.reset();
    m_root.reset();
}

}  // namespace pv::agent
