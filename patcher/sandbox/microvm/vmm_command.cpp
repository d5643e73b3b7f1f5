#include "patcher/sandbox/microvm/vmm_command.hpp"

#include <signal.h>

#include <algorithm>
#include <optional>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace pv::sandbox {

namespace {

// The last non-empty line of TEXT, for a one-line detail.
std::string last_line(const std::string& text) {
    size_t end = text.find_last_not_of("\r\n");
    if (end == std::string::npos)
        return "";
    const size_t start = text.rfind('\n', end);
    return text.substr(start == std::string::npos ? 0 : start + 1,
                       end + 1 - (start == std::string::npos ? 0 : start + 1));
}

// TEXT's lines joined with "; ", at most 400 characters.
std::string one_line(const std::string& text) {
    std::string joined;
    size_t start = 0;
    while (start < text.size() && joined.size() < 400) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos)
            end = text.size();
        std::string line = text.substr(start, end - start);
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        if (!line.empty())
            joined += (joined.empty() ? "" : "; ") + line;
        start = end + 1;
    }
    return joined.size() > 400 ? joined.substr(0, 400) + "..." : joined;
}

// Linux prints this on every panic (kernel/panic.c).
std::string panic_line(const std::string& console) {
    const size_t at = console.rfind("Kernel panic - not syncing");
    if (at == std::string::npos)
        return "";
    const size_t end = console.find_first_of("\r\n", at);
    return console.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

// The agent's own exit status, which it prints before it reboots the VM
// (agent/main.cpp); -1 when the console does not show it.
int agent_status(const std::string& console) {
    constexpr std::string_view kPrefix = "pv-agent: exit status ";
    const size_t at = console.rfind(kPrefix);
    if (at == std::string::npos)
        return -1;
    int status = 0;
    size_t digits = 0;
    for (size_t i = at + kPrefix.size(); i < console.size() && digits < 4; ++i, ++digits) {
        if (console[i] < '0' || console[i] > '9')
            break;
        status = status * 10 + (console[i] - '0');
    }
    return digits == 0 ? -1 : status;
}

struct Summary {
    std::string reason;  // "reset", "power-off", "timeout", "triple-fault", ...
    std::string detail;
};

// The VMM's --json line; the guest cannot write to it (its console goes
// to the serial log), but it is still parsed defensively.
std::optional<Summary> parse_summary(const std::string& text) {
    const auto json = nlohmann::json::parse(last_line(text), nullptr, false);
    if (!json.is_object() || !json.contains("exit_reason") || !json["exit_reason"].is_string())
        return std::nullopt;
    Summary summary{json["exit_reason"].get<std::string>(), ""};
    if (json.contains("detail") && json["detail"].is_string())
        summary.detail = json["detail"].get<std::string>();
    return summary;
}

}  // namespace

std::string guest_command_line(const MicroVmSetup& setup, uint32_t port) {
    const std::string base = setup.cmdline.empty() ? kLinuxCommandLine : setup.cmdline;
    return fmt::format("{} pv.port={}", base, port);
}

std::vector<std::string> vmm_arguments(const VmmCommand& command) {
    const double seconds = static_cast<double>(command.timeout.count()) / 1000.0;
    std::vector<std::string> arguments = {
        "patchvisor-vmm",
        "--kernel",
        command.setup.kernel_path,
        "--cmdline",
        guest_command_line(command.setup, kAgentPort),
        "--mem-mib",
        std::to_string(command.setup.memory_mib),
        "--disk",
        command.disk_path + (command.disk_read_only ? ",readonly" : ""),
        "--vsock-cid",
        std::to_string(kGuestCid),
        "--vsock-uds",
        command.vsock_uds,
        "--serial-log",
        command.serial_log,
        // At least a millisecond: 0 would mean no limit at all.
        "--timeout-s",
        fmt::format("{:.3f}", std::max(seconds, 0.001)),
        "--json",
    };
    if (!command.setup.initrd_path.empty())
        arguments.insert(arguments.begin() + 3, {"--initrd", command.setup.initrd_path});
    return arguments;
}

std::string port_socket_path(const std::string& vsock_uds, uint32_t port) {
    return fmt::format("{}_{}", vsock_uds, port);
}

AgentOutcome agent_outcome(const VmmEnd& end) {
    if (!end.process.exited) {
        if (end.process.signal == SIGKILL && end.killed_by_sandbox)
            return {end.past_deadline ? Ending::TimedOut : Ending::Stopped, 0, SIGKILL,
                    "patchvisor-vmm killed by the sandbox"};
        return {Ending::Signaled, 0, end.process.signal, "patchvisor-vmm crashed"};
    }
    const int status = end.process.exit_status;
    const auto summary = parse_summary(end.summary_json);
    if (!summary) {
        const std::string why = one_line(end.stderr_text);
        return {Ending::Exited, status == 0 ? 1 : status, 0,
                "patchvisor-vmm " + (why.empty() ? std::string("gave no summary") : why)};
    }
    if (summary->reason == "timeout")
        return {Ending::TimedOut, 0, 0, "the microVM reached its time limit"};
    if (status == 0 && (summary->reason == "reset" || summary->reason == "power-off")) {
        if (const std::string panic = panic_line(end.serial_tail); !panic.empty())
            return {Ending::Exited, 1, 0, "the guest kernel panicked: " + panic};
        if (const int status = agent_status(end.serial_tail); status > 0)
            return {Ending::Exited, status, 0, "pv-agent failed, then reset the microVM"};
        return {Ending::Exited, 0, 0, "the guest ended the microVM by " + summary->reason};
    }
    std::string detail = "the microVM ended by " + summary->reason;
    if (!summary->detail.empty())
        detail += ": " + summary->detail;
    return {Ending::Exited, status == 0 ? 1 : status, 0, detail};
}

}  // namespace pv::sandbox
