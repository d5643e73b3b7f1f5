#include "patcher/session.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <fstream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <fmt/format.h>

#include "patcher/file_digest.hpp"
#include "proto/framing.hpp"

namespace pv::patcher {

namespace asio = boost::asio;
using Clock = SessionClock;

namespace {

// A point in time a wait must end by, and how the timeout error names it
// (empty: the frame deadline, named when it strikes).
struct Deadline {
    Clock::time_point at;
    std::string name;
};

std::string seconds_text(Duration duration) {
    return fmt::format("{:g} s", std::chrono::duration<double>(duration).count());
}

}  // namespace

struct Session::State {
    asio::io_context io;
    asio::generic::stream_protocol::socket socket{io};
    proto::FrameDecoder decoder;
    SessionTimeouts timeouts;
    SessionLimits limits;
    std::optional<Deadline> cap;
    LogCallback on_log;
    ProgressCallback on_progress;
    uint64_t next_request_id = 1;
    uint64_t log_bytes = 0;
    // When the first byte of the frame now being received arrived.
    std::optional<Clock::time_point> frame_started;
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

    Result<void> write_frame(const std::string& frame, const Deadline& deadline,
                             const std::string& what) {
        bool done = false;
        boost::system::error_code error;
        asio::async_write(socket, asio::buffer(frame), [&](boost::system::error_code ec, size_t) {
            error = ec;
            done = true;
        });
        if (!run_until([&] { return done; }, deadline.at))
            return fail(break_stream(
                Error{what, "timed out sending to the agent (" + deadline.name + ")", ETIMEDOUT}));
        if (error)
            return fail(break_stream(Error{what, "send to agent: " + error.message(), EPIPE}));
        return {};
    }

    // The deadline of the next read: the request's, or sooner when a frame
    // has started and must be completed (the defence against trickling).
    Deadline read_deadline(const Deadline& deadline) const {
        if (!frame_started || *frame_started + timeouts.frame >= deadline.at)
            return deadline;
        return {*frame_started + timeouts.frame, ""};
    }

    std::string timeout_text(const Deadline& deadline) const {
        if (!deadline.name.empty())
            return "timed out waiting for the agent (" + deadline.name + ")";
        return fmt::format(
            "the agent trickles: {} bytes of a frame came in {}, and a frame must arrive whole "
            "within that time",
            decoder.buffered(), seconds_text(timeouts.frame));
    }

    Result<wire::Envelope> read_envelope(const Deadline& deadline, const std::string& what) {
        char buffer[65536];
        for (;;) {
            auto popped = decoder.pop();
            if (!popped)
                return fail(break_stream(with_context(popped.error(), what)));
            if (*popped) {
                frame_started = decoder.buffered() > 0 ? std::optional(Clock::now()) : std::nullopt;
                return std::move(**popped);
            }
            bool done = false;
            size_t got = 0;
            boost::system::error_code error;
            socket.async_read_some(asio::buffer(buffer),
                                   [&](boost::system::error_code ec, size_t n) {
                                       error = ec;
                                       got = n;
                                       done = true;
                                   });
            const Deadline wait = read_deadline(deadline);
            if (!run_until([&] { return done; }, wait.at))
                return fail(break_stream(Error{what, timeout_text(wait), ETIMEDOUT}));
            if (error == asio::error::eof)
                return fail(break_stream(with_context(decoder.end_of_stream_error(), what)));
            if (error)
                return fail(
                    break_stream(Error{what, "receive from agent: " + error.message(), EIO}));
            if (decoder.buffered() == 0)
                frame_started = Clock::now();
            auto fed = decoder.feed(buffer, got);
            if (!fed)
                return fail(break_stream(with_context(fed.error(), what)));
        }
    }

    // Between requests the agent has nothing to say; bytes waiting now were
    // sent unasked (or belong to an answer the host no longer waits for).
    Result<void> refuse_unsolicited(const std::string& what) {
        boost::system::error_code ignored;
        const size_t waiting = decoder.buffered() + socket.available(ignored);
        if (waiting == 0)
            return {};
        return fail(break_stream(Error{
            what,
            fmt::format("the agent sent {} bytes nobody asked for before this request", waiting),
            EPROTO}));
    }

    Result<void> take_log(const wire::Log& log, const std::string& what) {
        const size_t size = log.line().size();
        if (size > limits.log_line)
            return fail(break_stream(
                Error{what,
                      fmt::format("a log line of {} bytes is over the limit of {} bytes", size,
                                  limits.log_line),
                      EMSGSIZE}));
        log_bytes += size;
        if (log_bytes > limits.log_bytes)
            return fail(break_stream(
                Error{what,
                      fmt::format("the agent sent more than {} bytes of log output, the limit "
                                  "for one job",
                                  limits.log_bytes),
                      EMSGSIZE}));
        if (on_log)
            on_log(log.stream(), printable_line(log.line()));
        return {};
    }

    Result<void> take_progress(const wire::Progress& progress, const std::string& what) {
        if (progress.phase().size() > limits.field)
            return fail(break_stream(
                Error{what,
                      fmt::format("a progress phase of {} bytes is over the limit of {} bytes",
                                  progress.phase().size(), limits.field),
                      EMSGSIZE}));
        if (on_progress)
            on_progress(printable_line(progress.phase()),
                        std::min(progress.done(), progress.total()), progress.total());
        return {};
    }

    Result<void> take_interim(const wire::Envelope& reply, uint64_t& count,
                              const std::string& what) {
        if (++count > limits.interim_messages)
            return fail(break_stream(Error{
                what,
                fmt::format("the agent sent more than {} log and progress messages for one request",
                            limits.interim_messages),
                EMSGSIZE}));
        if (reply.has_log())
            return take_log(reply.log(), what);
        return take_progress(reply.progress(), what);
    }

    // A message for another request than the one waiting: one already
    // answered (sent unasked, or late) or one not yet sent (out of order).
    static std::string misdirected(const wire::Envelope& reply, uint64_t waiting) {
        if (reply.request_id() < waiting)
            return fmt::format(
                "the agent sent {} for request {}, which was answered already; "
                "nobody asked for it",
                proto::body_name(reply), reply.request_id());
        return fmt::format("reply for request {} while waiting for request {}", reply.request_id(),
                           waiting);
    }

    // The request's own deadline, or the one set by set_deadline if sooner.
    Deadline deadline_for(const wire::Envelope& request, Duration timeout) const {
        Deadline own{Clock::now() + timeout, "the " + proto::body_name(request) +
                                                 " request's limit of " + seconds_text(timeout)};
        if (cap && cap->at < own.at)
            return *cap;
        return own;
    }

    // Sends one request and returns its terminal envelope; Log and Progress
    // envelopes on the way go to the callbacks, an Error becomes an error.
    Result<wire::Envelope> exchange(wire::Envelope request, Duration timeout) {
        const std::string what = "agent " + proto::body_name(request);
        if (broken)
            return fail(with_context(*broken, what + ": session is broken"));
        PV_TRY(refuse_unsolicited(what));
        const uint64_t id = next_request_id++;
        request.set_request_id(id);
        const Deadline deadline = deadline_for(request, timeout);
        const std::string frame = PV_TRY(proto::encode_frame(request));
        PV_TRY(write_frame(frame, deadline, what));
        uint64_t interim = 0;
        for (;;) {
            wire::Envelope reply = PV_TRY(read_envelope(deadline, what));
            // Request id 0 is the agent's answer to a frame it could not
            // read at all, which can only be ours.
            if (reply.request_id() != id && !(reply.request_id() == 0 && reply.has_error()))
                return fail(break_stream(Error{what, misdirected(reply, id), EPROTO}));
            switch (reply.body_case()) {
                case wire::Envelope::kLog:
                case wire::Envelope::kProgress:
                    PV_TRY(take_interim(reply, interim, what));
                    continue;
                case wire::Envelope::kError:
                    return fail(
                        Error{what, bounded_message(reply.error().message(), limits.message),
                              reply.error().code() == wire::Error::CODE_COMMAND_FAILED ? ECHILD
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

Result<CommandResult> command_result(const std::string& what, const wire::Envelope& reply,
                                     const SessionLimits& limits) {
    if (!reply.has_result())
        return fail(unexpected_reply(what, reply));
    std::string message = bounded_message(reply.result().message(), limits.message);
    if (reply.result().status() != wire::Result::STATUS_OK)
        return fail(Error{"agent " + what, std::move(message), ECHILD});
    return CommandResult{reply.result().exit_code(), std::move(message)};
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
void Session::set_limits(const SessionLimits& limits) {
    m_state->limits = limits;
}
void Session::set_deadline(SessionClock::time_point at, std::string name) {
    m_state->cap = Deadline{at, std::move(name)};
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
    auto reply = PV_TRY(m_state->exchange(std::move(request), m_state->timeouts.hello));
    if (!reply.has_hello())
        return fail(unexpected_reply("hello", reply));
    if (reply.hello().major() != proto::kProtocolMajor)
        return fail(Error{"agent hello",
                          "agent speaks protocol " + std::to_string(reply.hello().major()) +
                              ".x, host speaks " + std::to_string(proto::kProtocolMajor) + ".x",
                          EPROTO});
    if (auto checked = check_hello(*reply.mutable_hello(), m_state->limits); !checked)
        return fail(m_state->break_stream(checked.error()));
    return reply.hello();
}

Result<wire::InspectResult> Session::inspect() {
    wire::Envelope request;
    request.mutable_inspect();
    auto reply = PV_TRY(m_state->exchange(std::move(request), m_state->timeouts.inspect));
    if (!reply.has_inspect_result())
        return fail(unexpected_reply("inspect", reply));
    if (auto checked = check_inspect_result(*reply.mutable_inspect_result(), m_state->limits);
        !checked)
        return fail(m_state->break_stream(checked.error()));
    return std::move(*reply.mutable_inspect_result());
}

Result<wire::FileData> Session::read_file(const std::string& path, uint64_t limit) {
    wire::FileData whole;
    std::string content;
    for (;;) {
        wire::Envelope request;
        request.mutable_read_file()->set_path(path);
        request.mutable_read_file()->set_offset(content.size());
        auto reply = PV_TRY(m_state->exchange(std::move(request), m_state->timeouts.inspect));
        if (!reply.has_file_data())
            return fail(unexpected_reply("read_file " + path, reply));
        wire::FileData& piece = *reply.mutable_file_data();
        if (piece.kind() != wire::FileData::KIND_FILE) {
            if (!content.empty())
                return fail(m_state->break_stream(Error{
                    "agent read_file " + path, "the file turned into something else", EPROTO}));
            if (auto checked = check_file_entries(piece, path, m_state->limits); !checked)
                return fail(m_state->break_stream(checked.error()));
            return std::move(piece);
        }
        if (piece.size() > limit)
            return fail(
                make_error("read " + path + " in the guest",
                           fmt::format("{} bytes, over the limit of {}", piece.size(), limit)));
        if (auto checked = check_file_piece(piece, content.size(), whole.size(), path); !checked)
            return fail(m_state->break_stream(checked.error()));
        whole.set_size(piece.size());
        content += piece.data();
        if (content.size() == piece.size())
            break;
    }
    whole.set_kind(wire::FileData::KIND_FILE);
    whole.set_data(std::move(content));
    return whole;
}

Result<void> Session::stage(const std::filesystem::path& file) {
    const FileDigest digest = PV_TRY(digest_file(file, kChunkSize));
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
        PV_TRY(command_result("stage " + name, reply, m_state->limits));
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
    return command_result("apply", reply, m_state->limits);
}

Result<CommandResult> Session::run(const std::vector<std::string>& argv) {
    wire::Envelope request;
    for (const auto& arg : argv)
        request.mutable_run()->add_argv(arg);
    const auto reply = PV_TRY(m_state->exchange(std::move(request), m_state->timeouts.run));
    return command_result("run", reply, m_state->limits);
}

Result<void> Session::finish() {
    wire::Envelope request;
    request.mutable_finish();
    const auto reply = PV_TRY(m_state->exchange(std::move(request), m_state->timeouts.finish));
    PV_TRY(command_result("finish", reply, m_state->limits));
    return {};
}

}  // namespace pv::patcher
