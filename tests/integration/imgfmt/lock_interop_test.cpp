// ImageLock against QEMU's own image locking (block/file-posix.c): an image
// qemu-io holds open, read-write or read-only, is refused; once qemu-io is
// gone the lock is ours; while we hold it, qemu-io cannot open the image.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "imgfmt/lock.hpp"
#include "qemu_tools.hpp"

namespace pv::img::interop {
namespace {

// qemu-io keeping PATH open (it sleeps inside its command loop) until killed.
class QemuIo {
  public:
    QemuIo(const std::string& path, bool read_only) {
        m_pid = ::fork();
        if (m_pid == 0) {
            const int null = ::open("/dev/null", O_WRONLY);
            ::dup2(null, STDOUT_FILENO);
            ::dup2(null, STDERR_FILENO);
            if (read_only)
                ::execlp("qemu-io", "qemu-io", "-r", "-f", "qcow2", "-c", "sleep 600000",
                         path.c_str(), nullptr);
            else
                ::execlp("qemu-io", "qemu-io", "-f", "qcow2", "-c", "sleep 600000", path.c_str(),
                         nullptr);
            ::_exit(127);
        }
    }
    QemuIo(const QemuIo&) = delete;
    QemuIo& operator=(const QemuIo&) = delete;
    ~QemuIo() { stop(); }

    void stop() {
        if (m_pid <= 0)
            return;
        ::kill(m_pid, SIGKILL);
        int status = 0;
        ::waitpid(m_pid, &status, 0);
        m_pid = -1;
    }
    [[nodiscard]] bool running() const { return m_pid > 0 && ::kill(m_pid, 0) == 0; }

  private:
    pid_t m_pid = -1;
};

// Whether anyone holds a lock on PATH, asked without taking one (a lock of
// ours while qemu-io starts would make qemu-io fail instead).
bool someone_holds_a_lock(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct flock probe {};
    probe.l_type = F_WRLCK;
    probe.l_whence = SEEK_SET;
    const bool held = ::fcntl(fd, F_OFD_GETLK, &probe) == 0 && probe.l_type != F_UNLCK;
    ::close(fd);
    return held;
}

bool wait_for_lock(const std::string& path) {
    for (int i = 0; i < 200; ++i) {
        if (someone_holds_a_lock(path))
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return false;
}

class LockInterop : public ::testing::TestWithParam<bool> {
  protected:
    void SetUp() override {
        image = dir.file("disk.qcow2");
        must_run("qemu-img create -f qcow2 " + quote(image) + " 16M");
    }
    TempDir dir;
    std::string image;
};

TEST_P(LockInterop, ImageHeldByQemuIoIsInUseUntilItExits) {
    const bool read_only = GetParam();
    QemuIo qemu(image, read_only);
    ASSERT_TRUE(wait_for_lock(image)) << "qemu-io never locked " << image;
    auto refused = ImageLock::acquire(image);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().message(), image + ": image is in use by another process");
    EXPECT_EQ(refused.error().code, EBUSY);
    // Our failed attempt must not have disturbed qemu-io.
    EXPECT_TRUE(qemu.running());
    qemu.stop();
    auto acquired = ImageLock::acquire(image);
    EXPECT_TRUE(acquired) << acquired.error().message();
}

TEST_P(LockInterop, QemuIoCannotOpenAnImageWeHold) {
    const bool read_only = GetParam();
    auto lock = ImageLock::acquire(image);
    ASSERT_TRUE(lock) << lock.error().message();
    const CommandResult result = run(std::string("qemu-io ") + (read_only ? "-r " : "") +
                                     "-f qcow2 -c 'read 0 512' " + quote(image));
    EXPECT_NE(result.exit_code, 0) << result.output;
    EXPECT_NE(result.output.find("lock"), std::string::npos) << result.output;
}

INSTANTIATE_TEST_SUITE_P(QemuIo, LockInterop, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "ReadOnly" : "ReadWrite"; });

}  // namespace
}  // namespace pv::img::interop
