#include "patcher/session_limits.hpp"

#include <fmt/format.h>

namespace pv::patcher {

namespace {

enum class Newlines { Keep, Replace };

std::string replace_controls(std::string_view text, Newlines newlines) {
    std::string out(text);
    for (char& c : out) {
        const auto byte = static_cast<unsigned char>(c);
        const bool kept = newlines == Newlines::Keep && (c == '\n' || c == '\t');
        if ((byte < 0x20 || byte == 0x7f) && !kept)
            c = '?';
    }
    return out;
}

Error limit_error(const std::string& what, size_t size, size_t limit, const char* unit) {
    return Error{"agent " + what,
                 fmt::format("{} {} is over the limit of {} {}", size, unit, limit, unit),
                 EMSGSIZE};
}

// One single-line field: bounded in size, control characters replaced.
Result<void> check_field(std::string& value, size_t limit, const std::string& what) {
    if (value.size() > limit)
        return fail(limit_error(what, value.size(), limit, "bytes"));
    value = replace_controls(value, Newlines::Replace);
    return {};
}

Result<void> check_package(wire::Package& package, size_t index, const SessionLimits& limits) {
    const std::string what = fmt::format("inspect: package {}", index);
    PV_TRY(check_field(*package.mutable_name(), limits.field, what + " name"));
    PV_TRY(check_field(*package.mutable_version(), limits.field, what + " version"));
    PV_TRY(check_field(*package.mutable_architecture(), limits.field, what + " architecture"));
    PV_TRY(check_field(*package.mutable_status(), limits.field, what + " status"));
    return {};
}

}  // namespace

std::string printable(std::string_view text) {
    return replace_controls(text, Newlines::Keep);
}

std::string printable_line(std::string_view text) {
    return replace_controls(text, Newlines::Replace);
}

std::string bounded_message(std::string_view text, size_t limit) {
    if (text.size() <= limit)
        return printable(text);
    return fmt::format("[{} bytes cut] {}", text.size() - limit,
                       printable(text.substr(text.size() - limit)));
}

Result<void> check_hello(wire::Hello& hello, const SessionLimits& limits) {
    PV_TRY(check_field(*hello.mutable_agent_version(), limits.field, "hello: agent_version"));
    PV_TRY(check_field(*hello.mutable_kernel(), limits.field, "hello: kernel"));
    PV_TRY(check_field(*hello.mutable_sandbox(), limits.field, "hello: sandbox"));
    return {};
}

Result<void> check_inspect_result(wire::InspectResult& result, const SessionLimits& limits) {
    if (static_cast<size_t>(result.packages_size()) > limits.packages)
        return fail(limit_error("inspect", static_cast<size_t>(result.packages_size()),
                                limits.packages, "packages"));
    if (static_cast<size_t>(result.os_release_size()) > limits.os_release_entries)
        return fail(limit_error("inspect: os-release",
                                static_cast<size_t>(result.os_release_size()),
                                limits.os_release_entries, "entries"));
    for (int i = 0; i < result.packages_size(); ++i)
        PV_TRY(check_package(*result.mutable_packages(i), static_cast<size_t>(i), limits));
    // Keys cannot change in place in a protobuf map: rebuild it.
    google::protobuf::Map<std::string, std::string> os_release;
    for (const auto& [key, value] : result.os_release()) {
        std::string checked_key = key;
        std::string checked_value = value;
        PV_TRY(check_field(checked_key, limits.field, "inspect: os-release key"));
        PV_TRY(check_field(checked_value, limits.os_release_value,
                           "inspect: os-release " + checked_key));
        os_release[checked_key] = std::move(checked_value);
    }
    *result.mutable_os_release() = std::move(os_release);
    PV_TRY(check_field(*result.mutable_root_device(), limits.field, "inspect: root_device"));
    PV_TRY(check_field(*result.mutable_filesystem(), limits.field, "inspect: filesystem"));
    return {};
}

Result<void> check_file_entries(const wire::FileData& data, const std::string& path,
                                const SessionLimits& limits) {
    for (const auto& name : data.entries()) {
        if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
            name.find('\0') != std::string::npos || name.size() > limits.field ||
            printable_line(name) != name)
            return fail(Error{"agent read_file " + path,
                              "directory entry '" + printable_line(name) + "' is not a plain name",
                              EPROTO});
    }
    return {};
}

Result<void> check_file_piece(const wire::FileData& piece, uint64_t received, uint64_t size,
                              const std::string& path) {
    const bool same_size = received == 0 || piece.size() == size;
    if (!same_size || received > piece.size() || piece.data().size() > piece.size() - received ||
        (piece.data().empty() && received < piece.size()))
        return fail(
            Error{"agent read_file " + path, "pieces do not add up to the file's size", EPROTO});
    return {};
}

}  // namespace pv::patcher
