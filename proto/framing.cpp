#include "proto/framing.hpp"

#include <cerrno>

namespace pv::proto {

namespace {

uint32_t read_be32(const char* bytes) {
    const auto* b = reinterpret_cast<const unsigned char*>(bytes);
    return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
}

void write_be32(char* bytes, uint32_t value) {
    bytes[0] = static_cast<char>(value >> 24);
    bytes[1] = static_cast<char>(value >> 16);
    bytes[2] = static_cast<char>(value >> 8);
    bytes[3] = static_cast<char>(value);
}

Error frame_error(std::string detail, int code) {
    return Error{"agent protocol frame", std::move(detail), code};
}

}  // namespace

std::string body_name(const wire::Envelope& envelope) {
    switch (envelope.body_case()) {
        case wire::Envelope::kHello:
            return "hello";
        case wire::Envelope::kInspect:
            return "inspect";
        case wire::Envelope::kInspectResult:
            return "inspect_result";
        case wire::Envelope::kStageChunk:
            return "stage_chunk";
        case wire::Envelope::kApply:
            return "apply";
        case wire::Envelope::kRun:
            return "run";
        case wire::Envelope::kFinish:
            return "finish";
        case wire::Envelope::kProgress:
            return "progress";
        case wire::Envelope::kLog:
            return "log";
        case wire::Envelope::kResult:
            return "result";
        case wire::Envelope::kError:
            return "error";
        case wire::Envelope::kReadFile:
            return "read_file";
        case wire::Envelope::kFileData:
            return "file_data";
        case wire::Envelope::BODY_NOT_SET:
            break;
    }
    return "(empty)";
}

Result<std::string> encode_frame(const wire::Envelope& envelope) {
    if (envelope.body_case() == wire::Envelope::BODY_NOT_SET)
        return fail(frame_error("refusing to send an envelope without a message", EINVAL));
    const size_t size = envelope.ByteSizeLong();
    if (size > kMaxFrameSize)
        return fail(frame_error("message " + body_name(envelope) + " is " + std::to_string(size) +
                                    " bytes, over the limit of " + std::to_string(kMaxFrameSize),
                                EMSGSIZE));
    std::string frame(kFrameHeaderSize + size, '\0');
    write_be32(frame.data(), static_cast<uint32_t>(size));
    if (!envelope.SerializeToArray(frame.data() + kFrameHeaderSize, static_cast<int>(size)))
        return fail(frame_error("cannot serialize " + body_name(envelope), EINVAL));
    return frame;
}

Result<wire::Envelope> decode_body(std::string_view body) {
    wire::Envelope envelope;
    if (!envelope.ParseFromArray(body.data(), static_cast<int>(body.size())))
        return fail(frame_error("malformed envelope of " + std::to_string(body.size()) + " bytes",
                                EBADMSG));
    // A body of a type this build does not know parses as "not set" with
    // unknown fields; an empty frame parses the same way. Both are refused,
    // because the request cannot be answered meaningfully.
    if (envelope.body_case() == wire::Envelope::BODY_NOT_SET)
        return fail(frame_error("envelope for request " + std::to_string(envelope.request_id()) +
                                    " carries no known message (empty, or a newer type)",
                                ENOMSG));
    return envelope;
}

Result<void> FrameDecoder::check_header() {
    if (buffered() < kFrameHeaderSize)
        return {};
    const uint32_t length = read_be32(m_buffer.data() + m_start);
    if (length > kMaxFrameSize) {
        m_failed = frame_error("frame length " + std::to_string(length) + " is over the limit of " +
                                   std::to_string(kMaxFrameSize),
                               EMSGSIZE);
        return fail(*m_failed);
    }
    return {};
}

Result<void> FrameDecoder::feed(const void* data, size_t size) {
    if (m_failed)
        return fail(*m_failed);
    // Drop consumed bytes before growing, so the buffer holds at most one
    // frame plus what arrived with it.
    if (m_start > 0 && m_start * 2 >= m_buffer.size()) {
        m_buffer.erase(0, m_start);
        m_start = 0;
    }
    m_buffer.append(static_cast<const char*>(data), size);
    return check_header();
}

Result<std::optional<wire::Envelope>> FrameDecoder::pop() {
    if (m_failed)
        return fail(*m_failed);
    PV_TRY(check_header());
    if (buffered() < kFrameHeaderSize)
        return std::optional<wire::Envelope>{};
    const uint32_t length = read_be32(m_buffer.data() + m_start);
    if (buffered() < kFrameHeaderSize + length)
        return std::optional<wire::Envelope>{};
    const std::string_view body(m_buffer.data() + m_start + kFrameHeaderSize, length);
    m_start += kFrameHeaderSize + length;
    // A frame whose body is bad is consumed whole: the stream stays in step,
    // so the caller may answer with an error and keep reading.
    auto envelope = PV_TRY(decode_body(body));
    return std::optional<wire::Envelope>(std::move(envelope));
}

Error FrameDecoder::end_of_stream_error() const {
    if (buffered() > 0)
        return frame_error("stream ended inside a frame (" + std::to_string(buffered()) +
                               " bytes of a truncated frame)",
                           EPROTO);
    return frame_error("peer closed the stream", EPIPE);
}

}  // namespace pv::proto
