// What keeps a domain from starting while its disks are patched: each disk's
// job holds an exclusive OFD lock on its image, which QEMU's own image
// locking honours. A QEMU started on a disk mid-job (what `virsh start` of a
// QEMU domain runs) cannot open it; and a disk QEMU already holds stops the
// whole domain's job with every disk unchanged.

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "tests/e2e/libvirt/test_domains.hpp"
#include "tests/e2e/patch/patch_test_support.hpp"

namespace pv::test {
namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// QEMU running a paused VM with DISK as its virtio-blk disk, as a VM does
// (a drive with no device takes no write permission, so locks nothing that
// matters); it stays up when it got the disk.
std::string qemu_on(const std::string& disk) {
    return "qemu-system-x86_64 -M microvm -accel tcg -nodefaults -display none -S -drive file=" +
           disk + ",format=raw,if=none,id=disk0 -device virtio-blk-device,drive=disk0";
}

// Ends a process started in the background when the test is done with it,
// however the test ends, and waits until it is gone.
class Stopper {
  public:
    explicit Stopper(int pid) : m_pid(pid) {}
    ~Stopper() {
        ::kill(m_pid, SIGKILL);
        for (int i = 0; i < 200 && ::kill(m_pid, 0) == 0; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    Stopper(const Stopper&) = delete;
    Stopper& operator=(const Stopper&) = delete;

  private:
    int m_pid;
};

class DomainLock : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!have_program("qemu-system-x86_64"))
            GTEST_SKIP() << "qemu-system-x86_64 is not installed (scripts/install-deps)";
        m_catalog = image_artifact("catalog");
        m_first = copy_sample(m_dir, "sample-raw", "first.raw");
        m_second = copy_sample(m_dir, "sample-raw", "second.raw");
        m_first_sha = sha256_of_file(m_first);
        m_second_sha = sha256_of_file(m_second);
        m_uri = write_test_node(
            m_dir, {{"app", 5, false, {{"vda", m_first, "raw"}, {"vdb", m_second, "raw"}}}});
    }

    // Starts COMMAND in the background; its output goes to LOG.
    int start(const std::string& command, const std::string& log) {
        const auto pid_file = m_dir.file("pid");
        must("(" + command + ") >" + quote(log) + " 2>&1 & echo $! >" + quote(pid_file));
        return std::stoi(read_file(pid_file));
    }

    std::string job_command(const std::string& agent, const std::string& extra) {
        return quote(built_binary("patcher/cli/patchvisor")) + " patch --domain app --connect " +
               quote(m_uri) + " --catalog " + quote(m_catalog) + " --work-dir " +
               quote(m_dir.file("work")) + " --sandbox jail " + agent + " " + extra;
    }

    TempDir m_dir;
    std::string m_catalog, m_first, m_second, m_first_sha, m_second_sha, m_uri;
};

TEST_F(DomainLock, QemuCannotOpenADiskWhileTheDomainsJobRuns) {
    const auto agent = m_dir.file("hostile-silence@apply");
    std::filesystem::create_symlink(built_binary("tests/e2e/hostile/pv-hostile-agent"), agent);
    const auto log = m_dir.file("job.log");
    const int job = start(job_command("--agent " + quote(agent), "--timeout-s 25"), log);
    const Stopper stop_job(job);
    // Both disks' jobs are past staging, so both hold their locks, and the
    // agent now stays silent until the job's deadline.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
        const auto text = read_file(log);
        if (text.find("vda   stage") != std::string::npos &&
            text.find("vdb   stage") != std::string::npos)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ASSERT_NE(read_file(log).find("vdb   stage"), std::string::npos) << read_file(log);
    for (const auto& disk : {m_first, m_second}) {
        const auto qemu = run("timeout 20 " + qemu_on(disk) + " 2>&1");
        EXPECT_EQ(qemu.exit_code, 1) << "QEMU must be refused the disk: " << qemu.output;
        EXPECT_NE(qemu.output.find("Failed to lock"), std::string::npos) << qemu.output;
    }
    const auto ended =
        run("while kill -0 " + std::to_string(job) + " 2>/dev/null; do sleep 0.2; done");
    EXPECT_EQ(ended.exit_code, 0);
    // Each disk's job ended at the silent agent's deadline, in apply.
    const auto text = read_file(log);
    EXPECT_NE(text.find("first.raw failed in phase apply"), std::string::npos) << text;
    EXPECT_NE(text.find("second.raw failed in phase apply"), std::string::npos) << text;
    EXPECT_EQ(sha256_of_file(m_first), m_first_sha);
    EXPECT_EQ(sha256_of_file(m_second), m_second_sha);
}

TEST_F(DomainLock, ADiskHeldByQemuStopsTheWholeDomain) {
    const Stopper stop_qemu(start(qemu_on(m_second), m_dir.file("qemu.log")));
    // QEMU holds the disk once qemu-io, which wants to write it, is refused.
    const auto held = run("for i in $(seq 100); do qemu-io -f raw -c quit " + quote(m_second) +
                          " >/dev/null 2>&1 || exit 0; sleep 0.1; done; exit 1");
    ASSERT_EQ(held.exit_code, 0) << read_file(m_dir.file("qemu.log"));
    const auto result = run(job_command("", "") + " 2>&1");
    EXPECT_EQ(result.exit_code, 1) << result.output;
    EXPECT_NE(result.output.find("in use by another process"), std::string::npos) << result.output;
    EXPECT_EQ(sha256_of_file(m_first), m_first_sha) << "vda must not be replaced without vdb";
    EXPECT_EQ(sha256_of_file(m_second), m_second_sha);
}

}  // namespace
}  // namespace pv::test
