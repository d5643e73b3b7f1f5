#include "patcher/session.hpp"

#include <openssl/evp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "proto/framing.hpp"

namespace pv::patcher {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

struct Session::State {
    asio::io_context io;
    asio::generic::stream_protocol::socket socket{io};
    proto::FrameDecoder decoder;
    SessionTimeouts timeouts;
    LogCallback on_log;
    ProgressCallback on_progress;
    uint64_t next_request_id = 1;
    std::optional<Error> broken;

    // Runs handlers until `done` or the deadline; false on timeout.
    template <class Done>
    bool run_until(const Done& done, Clock::time_point deadline) {
        while (!done()) {
            if (io.stopped())
                io.restart();
            if (io.run_one_until(deadline) == 0 && Clock::now() >= deadline)
                return false;
        }
        return true;
    }

    // Closes the socket and runs the cancelled handlers, which refer to the
    // caller's stack, before the caller returns.
    Error break_stream(Error error) {
        boost::system::error_code ignored;
        socket.cancel(ignored);
        socket.close(ignored);
        io.restart();
        io.poll();
        broken = error;
        return error;
    }

    Result<void> write_frame(const std::string& frame, Clock::time_point deadline,
                             const std::string& what) {
        bool done = false;
        boost::system::error_code error;
        asio::async_write(socket, asio::buffer(frame), [&](boost::system::error_code ec, size_t) {
            error = ec;
            done = true;
        });
        if (!run_until([&] { return done; }, deadline))
            return fail(break_stream(Error{what, "timed out sending to the agent", ETIMEDOUT}));
        if (error)
            return fail(break_stream(Error{what, "send to agent: " + error.message(), EPIPE}));
        return {};
    }

    Result<wire::Envelope> read_envelope(Clock::time_point deadline, const std::string& what) {
        char buffer[65536];
        for (;;) {
            auto popped = decoder.pop();
            if (!popped)
                return fail(break_stream(with_context(popped.error(), what)));
            if (*popped)
                return std::move(**popped);
            bool done = false;
            size_t got = 0;
            boost::system::error_code error;
            socket.async_read_some(asio::buffer(buffer),
                                   [&](boost::system::error_code ec, size_t n) {
                                       error = ec;
                                       got = n;
                                       done = true;
                                   });
            if (!run_until([&] { return done; }, deadline))
                return fail(
                    break_stream(Error{what, "timed out waiting for the agent", ETIMEDOUT}));
            if (error == asio::error::eof)
                return fail(break_stream(with_context(decoder.end_of_stream_error(), what)));
            if (error)
                return fail(
                    break_stream(Error{what, "receive from agent: " + error.message(), EIO}));
            auto fed = decoder.feed(buffer, got);
            if (!fed)
                return fail(break_stream(with_context(fed.error(), what)));
        }
    }

    // Sends one request and returns its terminal envelope; Log and Progress
    // envelopes on the way go to the callbacks, an Error becomes an error.
    Result<wire::Envelope> exchange(wire::Envelope request, Duration timeout) {
        const std::string what = "agent " + proto::body_name(request);
        if (broken)
            return fail(with_context(*broken, what + ": session is broken"));
        const uint64_t id = next_request_id++;
        request.set_request_id(id);
        const auto deadline = Clock::now() + timeout;
        const std::string frame = PV_TRY(proto::encode_frame(request));
        PV_TRY(write_frame(frame, deadline, what));
        for (;;) {
            wire::Envelope reply = PV_TRY(read_envelope(deadline, what));
            // Request id 0 is the agent's answer to a frame it could not
            // read at all, which can only be ours.
            if (reply.request_id() != id && !(reply.request_id() == 0 && reply.has_error()))
                return fail(
                    break_stream(Error{what,
                                       "reply for request " + std::to_string(reply.request_id()) +
                                           " while waiting for request " + std::to_string(id),
                                       EPROTO}));
            switch (reply.body_case()) {
                case wire::Envelope::kLog:
                    if (on_log)
                        on_log(reply.log().stream(), reply.log().line());
                    continue;
                case wire::Envelope::kProgress:
                    if (on_progress)
                        on_progress(reply.progress().phase(), reply.progress().done(),
                                    reply.progress().total());
                    continue;
                case wire::Envelope::kError:
                    return fail(Error{what, reply.error().message(),
                                      reply.error().code() == wire::Error::CODE_COMMAND_FAILED
                                          ? ECHILD
                                          : EPROTO});
                default:
                    return reply;
            }
        }
    }
};

namespace {

Error unexpected_reply(const std::string& what, const wire::Envelope& reply) {
    return Error{"agent " + what, "unexpected reply " + proto::body_name(reply), EPROTO};
}

Result<CommandResult> command_result(const std::string& what, const wire::Envelope& reply) {
    if (!reply.has_result())
        return fail(unexpected_reply(what, reply));
    if (reply.result().status() != wire::Result::STATUS_OK)
        return fail(Error{"agent " + what, reply.result().message(), ECHILD});
    return CommandResult{reply.result().exit_code(), reply.result().message()};
}

struct FileDigest {
    std::string sha256;
    uint64_t size = 0;
};

Result<FileDigest> digest_file(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in)
        return fail(errno_error("open " + file.string()));
    std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> hash(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_DigestInit_ex(hash.get(), EVP_sha256(), nullptr);
    FileDigest digest;
    std::vector<char> buffer(Session::kChunkSize);
    while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0) {
        EVP_DigestUpdate(hash.get(), buffer.data(), static_cast<size_t>(in.gcount()));
        digest.size += static_cast<uint64_t>(in.gcount());
    }
    if (in.bad())
        return fail(errno_error("read " + file.string()));
    unsigned char bytes[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(hash.get(), bytes, &length);
    digest.sha256.assign(reinterpret_cast<char*>(bytes), length);
    return digest;
}

}  // namespace

Session::Session(std::unique_ptr<State> state) : m_state(std::move(state)) {}
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;
Session::~Session() = default;

Result<Session> Session::from_fd(Fd fd) {
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0)
        return fail(errno_error("agent session: inspect socket"));
    auto state = std::make_unique<State>();
    boost::system::error_code error;
    state->socket.assign(asio::generic::stream_protocol(address.ss_family, 0), fd.get(), error);
    if (error)
        return fail(Error{"agent session: adopt socket", error.message(), EINVAL});
    (void)fd.release();
    return Session(std::move(state));
}

Result<Session> Session::from_socket(asio::generic::stream_protocol::socket& socket) {
    Fd fd(dup(socket.native_handle()));
    if (!fd.valid())
        return fail(errno_error("agent session: duplicate socket"));
    boost::system::error_code ignored;
    socket.close(ignored);
    return from_fd(std::move(fd));
}

void Session::set_timeouts(const SessionTimeouts& timeouts) {
    m_state->timeouts = timeouts;
}
void Session::on_log(LogCallback callback) {
    m_state->on_log = std::move(callback);
}
void Session::on_progress(ProgressCallback callback) {
    m_state->on_progress = std::move(callback);
}
bool Session::broken() const {
    return m_state->broken.has_value();
}

Result<wire::Hello> Session::hello() {
    wire::Envelope request;
    request.mutable_hello()->set_major(proto::kProtocolMajor);
    request.mutable_hello()->set_minor(proto::kProtocolMinor);
    const auto reply = PV_TRY(m_state->exchange(std::move(request), m_state->timeouts.hello));
    if (!reply.has_hello())
        return fail(unexpected_reply("hello", reply));
    if (reply.hello().major() != proto::kProtocolMajor)
        return fail(Error{"agent hello",
                          "agent speaks protocol " + std::to_string(reply.hello().major()) +
                              ".x, host speaks " + std::to_string(proto::kProtocolMajor) + ".x",
                          EPROTO});
    return reply.hello();
}

Result<wire::InspectResult> Session::inspect() {
    wire::Envelope request;
    request.mutable_inspect();
    auto reply = PV_TRY(m_state->exchange(std::move(request), m_state->timeouts.inspect));
    if (!reply.has_inspect_result())
        return fail(unexpected_reply("inspect", reply));
    return std::move(*reply.mutable_inspect_result());
}

Result<void> Session::stage(const std::filesystem::path& file) {
    const FileDigest digest = PV_TRY(digest_file(file));
    const std::string name = file.filename().string();
    std::ifstream in(file, std::ios::binary);
    if (!in)
        return fail(errno_error("open " + file.string()));
    uint64_t offset = 0;
    std::string data;
    // An empty file still takes one (empty) chunk, which completes it.
    do {
        data.resize(static_cast<size_t>(std::min<uint64_t>(kChunkSize, digest.size - offset)));
        if (!in.read(data.data(), static_cast<std::streamsize>(data.size())))
            return fail(make_error("read " + file.string(), "file changed while staging"));
        wire::Envelope request;
        auto* chunk = request.mutable_stage_chunk();
        chunk->set_name(name);
        chunk->set_offset(offset);
        chunk->set_total_size(digest.size);
        chunk->set_sha256(digest.sha256);
        chunk->set_data(data);
        const auto reply =
            PV_TRY(m_state->exchange(std::move(request), m_state->timeouts.stage_chunk));
        PV_TRY(command_result("stage " + name, reply));
        offset += data.size();
        if (m_state->on_progress)
            m_state->on_progress("stage " + name, offset, digest.size);
    } while (offset < digest.size);
    return {};
}

Result<CommandResult> Session::apply(const std::vector<std::string>& files) {
    wire::Envelope request;
    auto* apply = request.mutable_apply();
    apply->set_action(wire::Apply::ACTION_INSTALL);
    for (const auto& file : files)
        apply->add_files(file);
    const auto reply = PV_TRY(m_state->exchange(std::move(request), m_state->timeouts.apply));
    return command_result("apply", reply);
}

Result<CommandResult> Session::run(const std::vector<std::string>& argv) {
    wire::Envelope request;
    for (const auto& arg : argv)
        request.mutable_run()->add_argv(arg);
    const auto reply = PV_TRY(m_state->exchange(std::move(request), m_state->timeouts.run));
    return command_result("run", reply);
}

Result<void> Session::finish() {
    wire::Envelope request;
    request.mutable_finish();
    const auto reply = PV_TRY(m_state->exchange(std::move(request), m_state->timeouts.finish));
    PV_TRY(command_result("finish", reply));
    return {};
}

}  // namespace pv::patcher
