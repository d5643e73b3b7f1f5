#pragma once

// The host's end of the agent protocol (proto/agent.proto): typed calls over
// any connected stream socket, each with a deadline, so a hung or dead agent
// turns into an error instead of a stuck job.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/generic/stream_protocol.hpp>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "patcher/session_limits.hpp"
#include "proto/agent.pb.h"

namespace pv::patcher {

using Duration = std::chrono::milliseconds;
using SessionClock = std::chrono::steady_clock;

// Deadlines per request kind; Apply and Run run the guest's package manager
// and get the most time. A frame, once its first byte is in, must be whole
// within `frame`: pv-agent writes each frame at once, so only an agent that
// trickles bytes to hold the host takes longer.
struct SessionTimeouts {
    Duration hello = std::chrono::seconds(30);
    Duration inspect = std::chrono::seconds(120);
    Duration stage_chunk = std::chrono::seconds(60);
    Duration apply = std::chrono::seconds(900);
    Duration run = std::chrono::seconds(600);
    Duration finish = std::chrono::seconds(120);
    Duration frame = std::chrono::seconds(10);
};

// Outcome of Apply or Run that exited 0: the last lines of its output.
struct CommandResult {
    int exit_code = 0;
    std::string output_tail;
};

using LogCallback = std::function<void(wire::Log::Stream, const std::string& line)>;
using ProgressCallback =
    std::function<void(const std::string& phase, uint64_t done, uint64_t total)>;

// Usage, with `fd` a connected stream to pv-agent:
//   auto session = PV_TRY(Session::from_fd(std::move(fd)));
//   session.on_log([](wire::Log::Stream, const std::string& line) { ... });
//   PV_TRY(session.hello());
//   auto before = PV_TRY(session.inspect());
//   PV_TRY(session.stage("/catalog/libssl3_3.0.22-1~deb12u2_amd64.deb"));
//   PV_TRY(session.apply({"libssl3_3.0.22-1~deb12u2_amd64.deb"}));
//   PV_TRY(session.finish());
// Calls block the calling thread (the session runs its own io_context) and
// are not thread-safe; one session serves one agent.
class Session {
  public:
    // Takes ownership of a connected stream socket (Unix, vsock, ...).
    [[nodiscard]] static Result<Session> from_fd(Fd fd);
    // Takes over an already connected Asio socket (its descriptor is
    // duplicated, so the socket may belong to any io_context).
    [[nodiscard]] static Result<Session> from_socket(
        boost::asio::generic::stream_protocol::socket& socket);

    Session(Session&&) noexcept;
    Session& operator=(Session&&) noexcept;
    ~Session();

    void set_timeouts(const SessionTimeouts& timeouts);
    void set_limits(const SessionLimits& limits);
    // No request runs past AT (a phase's or the job's deadline, on top of
    // the per-request timeouts); NAME says which in the timeout error, e.g.
    // "the stage phase's limit of 600 s".
    void set_deadline(SessionClock::time_point at, std::string name);
    void on_log(LogCallback callback);
    void on_progress(ProgressCallback callback);

    // Exchanges versions; fails when the agent's major version differs.
    [[nodiscard]] Result<wire::Hello> hello();
    [[nodiscard]] Result<wire::InspectResult> inspect();
    // Reads PATH of the guest (ReadFile, protocol minor 1): a whole regular
    // file of at most LIMIT bytes, assembled from the agent's pieces, or a
    // directory's entry names. An agent that sends pieces that do not add up,
    // or entry names that are not plain names, breaks the session.
    [[nodiscard]] Result<wire::FileData> read_file(const std::string& path, uint64_t limit);
    // Uploads a file in chunks under its file name, with its SHA-256.
    [[nodiscard]] Result<void> stage(const std::filesystem::path& file);
    // Installs staged files (by name); fails with the package manager's
    // output when it exits non-zero.
    [[nodiscard]] Result<CommandResult> apply(const std::vector<std::string>& files);
    [[nodiscard]] Result<CommandResult> run(const std::vector<std::string>& argv);
    [[nodiscard]] Result<void> finish();

    // After a timeout, a protocol error or a broken limit the stream
    // position is unknown or the agent is not trusted; every later call
    // fails at once. Bytes the agent sends between requests (nobody asked
    // for them) are a protocol error too.
    [[nodiscard]] bool broken() const;

    // Bytes per StageChunk; well under the 4 MiB frame limit.
    static constexpr size_t kChunkSize = 1024 * 1024;

  private:
    struct State;
    explicit Session(std::unique_ptr<State> state);
    std::unique_ptr<State> m_state;
};

}  // namespace pv::patcher
