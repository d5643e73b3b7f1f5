#include "tests/integration/sandbox/sandbox_test_support.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/support.hpp"

namespace pv::sandbox::test {

namespace {

bool can_open(const char* path) {
    const int fd = ::open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return false;
    ::close(fd);
    return true;
}

// Tried in a child so the test process keeps its namespaces.
bool can_unshare() {
    const pid_t child = ::fork();
    if (child == 0)
        ::_exit(::unshare(CLONE_NEWNS | CLONE_NEWPID) == 0 ? 0 : 1);
    int status = 0;
    return child > 0 && ::waitpid(child, &status, 0) == child && WIFEXITED(status) &&
           WEXITSTATUS(status) == 0;
}

}  // namespace

std::string missing_privileges() {
    if (!can_open("/dev/fuse"))
        return "/dev/fuse";
    if (!can_open("/dev/loop-control"))
        return "/dev/loop-control";
    if (!can_unshare())
        return "unshare(CLONE_NEWNS | CLONE_NEWPID)";
    return "";
}

bool mounted_under(const std::string& path) {
    std::ifstream mounts("/proc/mounts");
    std::string line;
    while (std::getline(mounts, line)) {
        std::istringstream fields(line);
        std::string source, target;
        fields >> source >> target;
        if (target.rfind(path, 0) == 0)
            return true;
    }
    return false;
}

bool loop_backed_under(const std::string& path) {
    const auto listing =
        pv::test::run("losetup -a --noheadings -O BACK-FILE 2>/dev/null || losetup -a");
    return listing.output.find(path) != std::string::npos;
}

void expect_command(const std::string& command) {
    const auto result = pv::test::run(command);
    EXPECT_EQ(result.exit_code, 0) << command << "\n" << result.output;
}

SandboxOptions options_for(const pv::test::TempDir& dir, const std::string& name,
                           std::chrono::milliseconds timeout) {
    const std::string link = dir.file(name);
    std::filesystem::create_symlink(
        pv::test::built_binary("tests/integration/sandbox/stand_in_agent"), link);
    SandboxOptions options;
    options.agent_path = link;
    options.log_path = dir.file("agent.log");
    options.timeout = timeout;
    return options;
}

std::string read_line(int stream, std::chrono::milliseconds timeout) {
    std::string line;
    const auto until = std::chrono::steady_clock::now() + timeout;
    char byte = 0;
    while (std::chrono::steady_clock::now() < until) {
        pollfd watched{stream, POLLIN, 0};
        if (::poll(&watched, 1, 100) <= 0)
            continue;
        if (::read(stream, &byte, 1) != 1 || byte == '\n')
            break;
        line += byte;
    }
    return line;
}

std::map<std::string, std::string> fields_of(const std::string& line) {
    std::map<std::string, std::string> fields;
    std::istringstream words(line);
    std::string word;
    while (words >> word) {
        const size_t equals = word.find('=');
        if (equals != std::string::npos)
            fields[word.substr(0, equals)] = word.substr(equals + 1);
    }
    return fields;
}

void expect_nothing_left() {
    const std::string prefix = "/run/patchvisor/" + std::to_string(::getpid()) + "-";
    EXPECT_FALSE(mounted_under(prefix)) << pv::test::run("grep patchvisor /proc/mounts").output;
    EXPECT_FALSE(loop_backed_under(prefix)) << pv::test::run("losetup -a").output;
    std::error_code missing;
    for (const auto& entry : std::filesystem::directory_iterator("/run/patchvisor", missing))
        EXPECT_NE(entry.path().string().rfind(prefix, 0), 0u) << entry.path();
}

}  // namespace pv::sandbox::test
