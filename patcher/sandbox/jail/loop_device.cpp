#include "patcher/sandbox/jail/loop_device.hpp"

#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <utility>

#include "patcher/sandbox/jail/kernel_partitions.hpp"

namespace pv::sandbox {

namespace {

using namespace std::chrono_literals;

// Another process may claim the device LOOP_CTL_GET_FREE gave us before we
// configure it; then we ask again.
constexpr int kAttachAttempts = 16;

loop_config make_config(int backing_fd, const std::string& backing_path, Access access) {
    loop_config config{};
    config.fd = static_cast<uint32_t>(backing_fd);
    config.info.lo_flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_PARTSCAN;
    if (access == Access::ReadOnly)
        config.info.lo_flags |= LO_FLAGS_READ_ONLY;
    // The name shows in losetup -a and helps a human match a stale device.
    std::strncpy(reinterpret_cast<char*>(config.info.lo_file_name), backing_path.c_str(),
                 LO_NAME_SIZE - 1);
    return config;
}

// LOOP_CONFIGURE (Linux 5.8) sets fd and flags atomically; older kernels
// get LOOP_SET_FD then LOOP_SET_STATUS64.
Result<void> configure(int loop_fd, const loop_config& config, const std::string& loop_path) {
    if (::ioctl(loop_fd, LOOP_CONFIGURE, &config) == 0)
        return {};
    if (errno != EINVAL && errno != ENOTTY)
        return fail(errno_error("configure " + loop_path));
    if (::ioctl(loop_fd, LOOP_SET_FD, config.fd) != 0)
        return fail(errno_error("attach " + loop_path));
    if (::ioctl(loop_fd, LOOP_SET_STATUS64, &config.info) != 0) {
        const Error error = errno_error("set status of " + loop_path);
        (void)::ioctl(loop_fd, LOOP_CLR_FD, 0);
        return fail(error);
    }
    return {};
}

Result<int> free_loop_number() {
    Fd control = PV_TRY(Fd::open("/dev/loop-control", O_RDWR));
    const int number = ::ioctl(control.get(), LOOP_CTL_GET_FREE);
    if (number < 0)
        return fail(errno_error("find a free loop device (/dev/loop-control)"));
    return number;
}

std::vector<std::string> present_partitions(int number) {
    const std::string name = "loop" + std::to_string(number);
    std::vector<std::string> nodes;
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator("/sys/block/" + name, error)) {
        const std::string child = entry.path().filename();
        if (child.rfind(name + "p", 0) != 0)
            continue;
        const std::string node = "/dev/" + child;
        struct stat status {};
        if (::stat(node.c_str(), &status) == 0 && S_ISBLK(status.st_mode))
            nodes.push_back(node);
        else
            nodes.push_back("");  // the kernel knows it, devtmpfs not yet
    }
    std::sort(nodes.begin(), nodes.end());
    return nodes;
}

// sysfs shows the backing file by its canonical path.
std::string canonical_path(const std::string& path) {
    char* resolved = ::realpath(path.c_str(), nullptr);
    if (resolved == nullptr)
        return path;
    std::string result = resolved;
    std::free(resolved);
    return result;
}

}  // namespace

std::string loop_backing_file(int number) {
    std::ifstream in("/sys/block/loop" + std::to_string(number) + "/loop/backing_file");
    std::string line;
    std::getline(in, line);
    return line;
}

Result<LoopDevice> LoopDevice::attach(const std::string& backing_path, Access access) {
    const int flags = access == Access::ReadOnly ? O_RDONLY : O_RDWR;
    Fd backing = PV_TRY(Fd::open(backing_path, flags));
    const loop_config config = make_config(backing.get(), backing_path, access);
    for (int attempt = 0;; ++attempt) {
        const int number = PV_TRY(free_loop_number());
        const std::string path = "/dev/loop" + std::to_string(number);
        Fd loop = PV_TRY(Fd::open(path, flags));
        auto configured = configure(loop.get(), config, path);
        if (configured)
            return LoopDevice(std::move(loop), number, canonical_path(backing_path));
        if (configured.error().code != EBUSY || attempt + 1 >= kAttachAttempts)
            return fail(with_context(configured.error(), "loop-attach " + backing_path));
    }
}

LoopDevice::LoopDevice(Fd fd, int number, std::string backing_path)
    : m_fd(std::move(fd)),
      m_number(number),
      m_path("/dev/loop" + std::to_string(number)),
      m_backing_path(std::move(backing_path)) {}

LoopDevice::LoopDevice(LoopDevice&& other) noexcept
    : m_fd(std::move(other.m_fd)),
      m_number(std::exchange(other.m_number, -1)),
      m_path(std::move(other.m_path)),
      m_backing_path(std::move(other.m_backing_path)) {}

LoopDevice& LoopDevice::operator=(LoopDevice&& other) noexcept {
    if (this != &other) {
        if (auto detached = detach(5s); !detached)
            std::fprintf(stderr, "patchvisor: %s\n", detached.error().message().c_str());
        m_fd = std::move(other.m_fd);
        m_number = std::exchange(other.m_number, -1);
        m_path = std::move(other.m_path);
        m_backing_path = std::move(other.m_backing_path);
    }
    return *this;
}

LoopDevice::~LoopDevice() {
    if (auto detached = detach(5s); !detached)
        std::fprintf(stderr, "patchvisor: %s\n", detached.error().message().c_str());
}

Result<std::vector<std::string>> LoopDevice::wait_for_partitions(
    std::chrono::milliseconds timeout) const {
    // The kernel's partition scan runs during LOOP_CONFIGURE; where it found
    // nothing (no parsers built in), the table is registered from here.
    if (present_partitions(m_number).empty())
        (void)PV_TRY(register_partitions(m_fd.get(), m_path));
    // devtmpfs nodes follow the sysfs entries quickly.
    constexpr auto kSettle = 200ms;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto stable_since = std::chrono::steady_clock::now();
    std::vector<std::string> seen = present_partitions(m_number);
    for (;;) {
        std::this_thread::sleep_for(20ms);
        const auto now = std::chrono::steady_clock::now();
        std::vector<std::string> current = present_partitions(m_number);
        if (current != seen) {
            seen = std::move(current);
            stable_since = now;
        }
        const bool complete = std::find(seen.begin(), seen.end(), "") == seen.end();
        if (complete && now - stable_since >= kSettle)
            return seen;
        if (now >= deadline)
            return fail(make_error("wait for partitions of " + m_path,
                                   "the /dev nodes did not appear in time"));
    }
}

Result<void> LoopDevice::detach(std::chrono::milliseconds timeout) {
    if (m_number < 0)
        return {};
    const int number = std::exchange(m_number, -1);
    // With other openers the kernel only marks the device for autoclear
    // (it already is); it detaches when the last one closes.
    if (m_fd.valid() && ::ioctl(m_fd.get(), LOOP_CLR_FD, 0) != 0 && errno != ENXIO)
        std::fprintf(stderr, "patchvisor: detach %s: %s (deferred)\n", m_path.c_str(),
                     std::strerror(errno));
    m_fd.reset();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    // Compared by name, as someone else may attach the number right after.
    while (loop_backing_file(number) == m_backing_path) {
        if (std::chrono::steady_clock::now() >= deadline)
            return fail(make_error("detach " + m_path, "still attached; something holds it open"));
        std::this_thread::sleep_for(10ms);
    }
    return {};
}

}  // namespace pv::sandbox
