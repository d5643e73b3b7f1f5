#pragma once

// Framing of the agent protocol (proto/agent.proto): a 4-byte big-endian
// length followed by one serialized wire::Envelope. The same code runs in the host
// and in the agent, so both reject the same malformed streams.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "proto/agent.pb.h"

namespace pv::proto {

// Compatibility rule (see agent.proto): equal majors talk, minors only add.
inline constexpr uint32_t kProtocolMajor = 1;
// Minor 1 added ReadFile / FileData.
inline constexpr uint32_t kProtocolMinor = 1;

// A frame body larger than this is refused by encoder and decoder alike, so a
// hostile peer cannot make the other side allocate without bound.
inline constexpr size_t kMaxFrameSize = 4 * 1024 * 1024;
inline constexpr size_t kFrameHeaderSize = 4;

// Serializes one envelope into a frame. Fails for an envelope without a body
// or one that would exceed kMaxFrameSize.
[[nodiscard]] Result<std::string> encode_frame(const wire::Envelope& envelope);

// Parses one frame body (without the length prefix) into an envelope.
// Fails when the bytes do not parse or carry no known message.
[[nodiscard]] Result<wire::Envelope> decode_body(std::string_view body);

// Incremental decoder: feed it bytes as they arrive, pop whole envelopes.
// After the first error it stays failed, because the stream position is lost.
class FrameDecoder {
  public:
    // Appends bytes; fails at once when a length prefix exceeds the limit.
    [[nodiscard]] Result<void> feed(const void* data, size_t size);

    // The next complete envelope, nullopt-like empty optional when more bytes
    // are needed, or the error of a malformed frame.
    [[nodiscard]] Result<std::optional<wire::Envelope>> pop();

    // Bytes received but not yet returned as an envelope; a stream that ends
    // with a non-zero value here ended in the middle of a frame.
    [[nodiscard]] size_t buffered() const { return m_buffer.size() - m_start; }

    // The error to report when the peer closes the stream: a truncated frame
    // if bytes are pending, a plain end of stream otherwise.
    [[nodiscard]] Error end_of_stream_error() const;

  private:
    [[nodiscard]] Result<void> check_header();

    std::string m_buffer;
    size_t m_start = 0;
    std::optional<Error> m_failed;
};

// Name of the body case, for messages: "inspect_result", "(empty)".
[[nodiscard]] std::string body_name(const wire::Envelope& envelope);

}  // namespace pv::proto
