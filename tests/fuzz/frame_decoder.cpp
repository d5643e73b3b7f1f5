// Fuzz target: the agent protocol's incremental FrameDecoder, which reads
// bytes a hostile agent (or host) controls. The first input byte chooses how
// the stream is cut into feed() calls, so frame boundaries land everywhere.

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include <google/protobuf/stubs/logging.h>

#include "proto/framing.hpp"
#include "tests/fuzz/fuzz_input.hpp"

namespace {

// Re-encoding a decoded envelope must give a frame that decodes to the same
// kind of message: the host and the agent share this code, so what one side
// accepts the other side must be able to send.
void check_round_trip(const pv::wire::Envelope& envelope) {
    if (envelope.ByteSizeLong() > pv::proto::kMaxFrameSize)
        return;
    auto frame = pv::proto::encode_frame(envelope);
    if (!frame)
        std::abort();
    pv::proto::FrameDecoder decoder;
    if (!decoder.feed(frame->data(), frame->size()))
        std::abort();
    auto popped = decoder.pop();
    if (!popped || !*popped || (*popped)->body_case() != envelope.body_case())
        std::abort();
}

// Pops every complete envelope; false once the decoder has failed.
bool drain(pv::proto::FrameDecoder& decoder) {
    for (;;) {
        auto popped = decoder.pop();
        if (!popped)
            return false;
        if (!*popped)
            return true;
        (void)pv::proto::body_name(**popped);
        check_round_trip(**popped);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // protobuf logs every invalid UTF-8 string it rejects; at thousands of
    // runs a second that is only noise, and a slow one.
    static const bool quiet = (google::protobuf::SetLogHandler(nullptr), true);
    (void)quiet;
    pv::fuzz::Input input(data, size);
    pv::fuzz::ChunkSizes chunks(input.take_byte());
    pv::proto::FrameDecoder decoder;
    bool failed = false;
    while (!failed && !input.empty()) {
        const std::string_view piece = input.take(chunks.next());
        failed = !decoder.feed(piece.data(), piece.size()) || !drain(decoder);
    }
    if (!failed)
        (void)decoder.end_of_stream_error();
    (void)decoder.buffered();
    return 0;
}
