#include "tests/integration/sandbox/sandbox_test_support.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

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

}  // namespace pv::sandbox::test
