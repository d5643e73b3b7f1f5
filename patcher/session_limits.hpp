#pragma once

// What the host accepts from an agent beyond the 4 MiB frame limit of
// proto/framing.hpp. The agent runs guest code (maintainer scripts) and may
// be hostile: it must not make the host allocate, log or wait without bound,
// nor write terminal control sequences through our output.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "proto/agent.pb.h"

namespace pv::patcher {

struct SessionLimits {
    // Log lines of a whole session (one job) together, and one line. pv-agent
    // splits lines at 64 KiB (agent/process.cpp), so a longer one is a lie.
    uint64_t log_bytes = 16 * 1024 * 1024;
    size_t log_line = 128 * 1024;
    // Log and Progress envelopes before one request's terminal reply.
    uint64_t interim_messages = 1024 * 1024;
    // Inspect: package records and os-release entries (Debian has ~65 000
    // source packages in all; a guest with more installed is not real).
    size_t packages = 200'000;
    size_t os_release_entries = 256;
    // Names, versions, architectures, statuses, Hello strings, progress
    // phases, os-release keys; os-release values.
    size_t field = 512;
    size_t os_release_value = 4096;
    // Result and Error text kept for messages and reports; longer text
    // keeps its end, where a package manager prints why it failed.
    size_t message = 64 * 1024;
};

// TEXT with every control character but newline and tab replaced by '?',
// so that nothing the agent sends can drive the terminal.
[[nodiscard]] std::string printable(std::string_view text);

// The same for one line: newlines and tabs are replaced too.
[[nodiscard]] std::string printable_line(std::string_view text);

// The last LIMIT bytes of TEXT (printable), with a note of what was cut.
[[nodiscard]] std::string bounded_message(std::string_view text, size_t limit);

// Checks the sizes of an agent's Hello and makes its strings printable.
[[nodiscard]] Result<void> check_hello(wire::Hello& hello, const SessionLimits& limits);

// Checks the sizes of an InspectResult and makes its strings printable.
[[nodiscard]] Result<void> check_inspect_result(wire::InspectResult& result,
                                                const SessionLimits& limits);

// A directory's entry names from ReadFile must each be one plain path
// component (they are joined into further paths).
[[nodiscard]] Result<void> check_file_entries(const wire::FileData& data, const std::string& path,
                                              const SessionLimits& limits);

// A file piece from ReadFile after RECEIVED bytes of a file first announced
// at SIZE bytes: the size must not change, the piece must fit, and a piece
// may be empty only when the file is complete.
[[nodiscard]] Result<void> check_file_piece(const wire::FileData& piece, uint64_t received,
                                            uint64_t size, const std::string& path);

}  // namespace pv::patcher
