// pv-boot-timer: runs one VM process (patchvisor-vmm or QEMU, the guest's
// serial port on its standard output) and measures it the same way
// whichever VMM it is, for bench/boot/run:
//
//   pv-boot-timer [--marker TEXT] [--listen unix:PATH|vsock:PORT] [--output FILE]
//                 [--stderr FILE] [--timeout-s N] [--rss] -- COMMAND...
//
// Timing (the default): from just before fork(2) to the first byte on the
// child's standard output, to the first appearance of TEXT there, and to
// the child's exit. With --listen, also to the in-guest agent's connection
// there and to its reply to a Hello request (bench/boot/agent_hello.hpp),
// after which the connection is closed and the agent ends the VM.
//
// --rss measures the peak resident set of the process instead, exactly:
// the child runs under ptrace and its VmHWM is read at its exit event,
// while its memory still exists (polling /proc can miss the last growth,
// and ru_maxrss counts the harness's own pages inherited across fork and
// exec). The timings of an --rss run are not printed.
//
// Prints one line of KEY=VALUE pairs ("-" for what did not happen),
//   first_byte_ms=... marker_ms=... [connect_ms=... hello_ms=...] exit_ms=...
//   status=N|signal-N|timeout
// or "status=... rss_kib=..." with --rss; with --listen a second line,
// "hello: " and the agent's reply in words. Everything the child printed
// goes to the --output file, its standard error to the --stderr file (else
// /dev/null). Exit 0 when the measurement was made (whatever the child
// did), 1 when it could not be.

#include <fcntl.h>
#include <poll.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "bench/boot/agent_hello.hpp"
#include "common/fd.hpp"

namespace {

struct Options {
    std::string marker;
    std::string listen;
    std::string output;
    std::string errors;
    double timeout_s = 300;
    bool rss = false;
    std::vector<std::string> command;
};

struct Measurement {
    std::optional<double> first_byte_ms;
    std::optional<double> marker_ms;
    std::optional<double> connect_ms;
    std::optional<double> hello_ms;
    std::string hello;
    double exit_ms = 0;
    std::string status;
    std::optional<long> rss_kib;
    std::string output;
};

double now_ms() {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<double>(now.tv_sec) * 1e3 + static_cast<double>(now.tv_nsec) / 1e6;
}

// VmHWM of PID in KiB, or nothing when /proc no longer shows it.
std::optional<long> peak_rss_kib(pid_t pid) {
    std::ifstream status(fmt::format("/proc/{}/status", pid));
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("VmHWM:", 0) == 0)
            return std::stol(line.substr(6));
    return std::nullopt;
}

[[noreturn]] void exec_child(const Options& options, int stdout_fd) {
    const int null_fd = open("/dev/null", O_RDWR);
    const int error_fd = options.errors.empty()
                             ? null_fd
                             : open(options.errors.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (null_fd < 0 || error_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 ||
        dup2(error_fd, STDERR_FILENO) < 0 || dup2(stdout_fd, STDOUT_FILENO) < 0)
        _exit(126);
    if (options.rss && ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0)
        _exit(126);
    std::vector<char*> argv;
    for (const auto& word : options.command)
        argv.push_back(const_cast<char*>(word.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
}

std::string describe(int status) {
    if (WIFEXITED(status))
        return std::to_string(WEXITSTATUS(status));
    return fmt::format("signal-{}", WTERMSIG(status));
}

// One step of a traced child: records VmHWM at its exit event and lets every
// other stop continue with its signal. Returns the final status once reaped.
std::optional<int> handle_traced(pid_t pid, int status, Measurement& measurement) {
    if (WIFEXITED(status) || WIFSIGNALED(status))
        return status;
    if (!WIFSTOPPED(status))
        return std::nullopt;
    int signal = WSTOPSIG(status);
    if (status >> 8 == (SIGTRAP | (PTRACE_EVENT_EXIT << 8))) {
        measurement.rss_kib = peak_rss_kib(pid);
        signal = 0;
    } else if (signal == SIGTRAP) {
        // The stop after execve: from here on, report the exit event.
        ptrace(PTRACE_SETOPTIONS, pid, nullptr, PTRACE_O_TRACEEXIT | PTRACE_O_EXITKILL);
        signal = 0;
    }
    ptrace(PTRACE_CONT, pid, nullptr, reinterpret_cast<void*>(static_cast<long>(signal)));
    return std::nullopt;
}

// Appends CHUNK, read AT ms after the start, to MEASUREMENT's output and
// notes the first byte and the marker's first appearance.
void record(const Options& options, const char* chunk, size_t size, double at,
            Measurement& measurement) {
    if (!measurement.first_byte_ms)
        measurement.first_byte_ms = at;
    const size_t from = measurement.output.size() >= options.marker.size()
                            ? measurement.output.size() - options.marker.size()
                            : 0;
    measurement.output.append(chunk, size);
    if (!options.marker.empty() && !measurement.marker_ms &&
        measurement.output.find(options.marker, from) != std::string::npos)
        measurement.marker_ms = at;
}

// Reads what the child's output holds now; closes it at its end.
void read_output(const Options& options, pv::Fd& output, double at, Measurement& measurement) {
    char buffer[65536];
    const ssize_t got = read(output.get(), buffer, sizeof buffer);
    if (got > 0)
        record(options, buffer, static_cast<size_t>(got), at, measurement);
    else if (got == 0 || (errno != EINTR && errno != EAGAIN))
        output.reset();
}

// One step of the agent's exchange, noting when it connected and answered.
pv::Result<void> serve_agent(pv::bench::HelloListener& listener, double at,
                             Measurement& measurement) {
    const bool was_connected = listener.connected();
    const auto reply = PV_TRY(listener.on_readable());
    if (!was_connected && listener.connected())
        measurement.connect_ms = at;
    if (reply) {
        measurement.hello_ms = at;
        measurement.hello = *reply;
    }
    return {};
}

// Reads the child's output (and serves the agent's LISTENER, if any) until
// the child ends or the deadline passes, reaping it; the clock readings are
// relative to START. The pidfd wakes the loop the moment the child ends, so
// the exit time carries no polling delay.
pv::Result<Measurement> watch(const Options& options, pid_t pid, pv::Fd output,
                              pv::bench::HelloListener* listener, double start) {
    pv::Fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd.valid())
        return pv::fail(pv::errno_error("pidfd_open"));
    Measurement measurement;
    const double deadline = start + options.timeout_s * 1000;
    std::optional<int> final_status;
    while (!final_status) {
        if (now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, __WALL);
            measurement.status = "timeout";
            measurement.exit_ms = now_ms() - start;
            return measurement;
        }
        pollfd ready[3] = {{output.valid() ? output.get() : -1, POLLIN, 0},
                           {pidfd.get(), POLLIN, 0},
                           {listener ? listener->fd() : -1, POLLIN, 0}};
        // A traced child stops without any file becoming readable: look often.
        if (poll(ready, 3, options.rss ? 5 : 100) < 0 && errno != EINTR)
            return pv::fail(pv::errno_error("poll the child's output"));
        if (ready[0].revents != 0)
            read_output(options, output, now_ms() - start, measurement);
        if (ready[2].revents != 0) {
            if (auto served = serve_agent(*listener, now_ms() - start, measurement); !served) {
                kill(pid, SIGKILL);
                waitpid(pid, nullptr, __WALL);
                return pv::fail(served.error());
            }
        }
        int status = 0;
        const pid_t reaped = waitpid(pid, &status, WNOHANG | __WALL);
        if (reaped == pid)
            final_status = options.rss ? handle_traced(pid, status, measurement) : status;
        else if (reaped < 0)
            return pv::fail(pv::errno_error("waitpid"));
    }
    measurement.exit_ms = now_ms() - start;
    // Whatever the child wrote just before it ended.
    while (output.valid())
        read_output(options, output, measurement.exit_ms, measurement);
    measurement.status = describe(*final_status);
    return measurement;
}

pv::Result<Measurement> measure(const Options& options) {
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0)
        return pv::fail(pv::errno_error("pipe2"));
    std::optional<pv::bench::HelloListener> listener;
    if (!options.listen.empty())
        listener.emplace(PV_TRY(pv::bench::HelloListener::listen(options.listen)));
    pv::Fd read_end(pipe_fds[0]);
    pv::Fd write_end(pipe_fds[1]);
    // Only our end is non-blocking: the child's standard output stays as usual.
    if (fcntl(read_end.get(), F_SETFL, O_NONBLOCK) != 0)
        return pv::fail(pv::errno_error("make the output pipe non-blocking"));
    const double start = now_ms();
    const pid_t pid = fork();
    if (pid < 0)
        return pv::fail(pv::errno_error("fork"));
    if (pid == 0)
        exec_child(options, write_end.get());
    write_end.reset();
    return watch(options, pid, std::move(read_end), listener ? &*listener : nullptr, start);
}

std::string field(const std::optional<double>& value) {
    return value ? fmt::format("{:.3f}", *value) : "-";
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    CLI::App app{"Times one VM process: start to first serial byte, to a marker, to exit"};
    app.add_option("--marker", options.marker, "text whose first appearance is timed");
    app.add_option("--listen", options.listen,
                   "unix:PATH or vsock:PORT where the agent connects; time its Hello reply");
    app.add_option("--output", options.output, "file that receives the child's output");
    app.add_option("--stderr", options.errors, "file that receives the child's standard error");
    app.add_option("--timeout-s", options.timeout_s, "kill the child after this long")
        ->check(CLI::PositiveNumber);
    app.add_flag("--rss", options.rss, "measure the peak RSS (VmHWM at exit) instead of time");
    app.add_option("command", options.command, "the VMM's command line")->required();
    CLI11_PARSE(app, argc, argv);

    auto measured = measure(options);
    if (!measured) {
        std::fprintf(stderr, "pv-boot-timer: %s\n", measured.error().message().c_str());
        return 1;
    }
    if (!options.output.empty()) {
        std::ofstream file(options.output, std::ios::binary);
        file << measured->output;
        if (!file.flush()) {
            std::fprintf(stderr, "pv-boot-timer: cannot write %s\n", options.output.c_str());
            return 1;
        }
    }
    if (options.rss)
        fmt::print("status={} rss_kib={}\n", measured->status,
                   measured->rss_kib ? std::to_string(*measured->rss_kib) : "-");
    else if (options.listen.empty())
        fmt::print("first_byte_ms={} marker_ms={} exit_ms={:.3f} status={}\n",
                   field(measured->first_byte_ms), field(measured->marker_ms), measured->exit_ms,
                   measured->status);
    else
        fmt::print(
            "first_byte_ms={} marker_ms={} connect_ms={} hello_ms={} exit_ms={:.3f} "
            "status={}\nhello: {}\n",
            field(measured->first_byte_ms), field(measured->marker_ms), field(measured->connect_ms),
            field(measured->hello_ms), measured->exit_ms, measured->status,
            measured->hello.empty() ? "-" : measured->hello);
    return 0;
}
