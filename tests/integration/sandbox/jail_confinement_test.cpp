// What the jail's agent can see and do (jail_root.hpp, confinement.hpp),
// as reported by the stand-in agent's probe mode from inside: only the
// minimal root and /dev, no host file, the reduced capability sets, and
// denied system calls failing while the agent's own mounts still work.

#include <linux/capability.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "patcher/sandbox/jail/confinement.hpp"
#include "patcher/sandbox/jail/jail_sandbox.hpp"
#include "tests/integration/sandbox/sandbox_test_support.hpp"
#include "tests/support/support.hpp"

namespace pv::sandbox::test {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kMiB = 1024 * 1024;
// stand_in_agent.cpp looks for this file.
constexpr const char* kHostMarker = "/var/tmp/patchvisor-jail-probe-marker";

// Whether this process, outside any filter, can make i386 system calls
// (int $0x80 getpid, number 20): then the jail must answer them too, with
// its filter's EPERM, and "unsupported" would mean the probe tested nothing.
bool host_runs_i386_calls() {
#if defined(__x86_64__)
    long result = 20;
    // The kernel zeroes r8-r11 on the way back from a 64-bit int $0x80.
    __asm__ volatile("int $0x80" : "+a"(result) : : "r8", "r9", "r10", "r11", "memory");
    return result == ::getpid();
#else
    return false;
#endif
}

// A file the host has and the jail must not see; removed at scope end.
class HostMarker {
  public:
    HostMarker() { std::ofstream(kHostMarker) << "host only\n"; }
    ~HostMarker() { std::filesystem::remove(kHostMarker); }
    HostMarker(const HostMarker&) = delete;
    HostMarker& operator=(const HostMarker&) = delete;
};

// The probe's report, or an empty map when the jail did not start.
std::map<std::string, std::string> probe_jail(img::BlockDevice& disk) {
    pv::test::TempDir dir;
    auto jail = JailSandbox::start(disk, options_for(dir, "stand-in-probe", 30s), "test");
    EXPECT_TRUE(jail) << jail.error().message();
    if (!jail)
        return {};
    const Fd stream = (*jail)->take_stream();
    auto fields = fields_of(read_line(stream.get(), 10s));
    EXPECT_TRUE((*jail)->wait(10s).succeeded());
    EXPECT_TRUE((*jail)->teardown());
    return fields;
}

uint64_t hex_mask(const std::string& text) {
    return std::stoull(text, nullptr, 16);
}

TEST(JailConfinementTest, AgentSeesOnlyItsMinimalRootAndDev) {
    PV_SKIP_WITHOUT_PRIVILEGES();
    ASSERT_TRUE(std::filesystem::exists("/var/tmp"));
    const HostMarker marker;
    MemoryDevice disk(16 * kMiB);
    const auto fields = probe_jail(disk);
    ASSERT_FALSE(fields.empty());
    EXPECT_EQ(fields.at("host_marker"), "absent");
    EXPECT_EQ(fields.at("root"), "dev,proc,run,sys,tmp");
    // The disk's node keeps its host name; MemoryDevice has no partitions.
    const std::string loop = fields.at("dev").substr(fields.at("dev").find("loop"));
    EXPECT_EQ(fields.at("dev"),
              "full," + loop.substr(0, loop.find(',')) + ",null,random,tty,urandom,zero");
    EXPECT_EQ(fields.at("disk_block"), "yes");
    EXPECT_EQ(fields.at("write_root"), "EROFS");
    EXPECT_EQ(fields.at("write_proc_sys"), "EROFS");
    // (Kernels without CONFIG_MAGIC_SYSRQ, as here, have no trigger.)
    EXPECT_EQ(fields.at("write_sysrq"),
              std::filesystem::exists("/proc/sysrq-trigger") ? "EROFS" : "ENOENT");
    expect_nothing_left();
}

TEST(JailConfinementTest, CapabilitiesAreReducedToTheKeptSet) {
    PV_SKIP_WITHOUT_PRIVILEGES();
    MemoryDevice disk(16 * kMiB);
    const auto fields = probe_jail(disk);
    ASSERT_FALSE(fields.empty());
    // What the jail keeps, of what this process has to give.
    std::ifstream status("/proc/self/status");
    std::string line;
    uint64_t own = 0;
    while (std::getline(status, line))
        if (line.rfind("CapPrm:", 0) == 0)
            own = hex_mask(line.substr(7));
    const uint64_t kept = kept_capabilities() & own;
    EXPECT_NE(kept, 0u);
    EXPECT_EQ(hex_mask(fields.at("CapEff")), kept);
    EXPECT_EQ(hex_mask(fields.at("CapPrm")), kept);
    EXPECT_EQ(hex_mask(fields.at("CapBnd")), kept);
    EXPECT_EQ(hex_mask(fields.at("CapInh")), 0u);
    EXPECT_EQ(hex_mask(fields.at("CapAmb")), 0u);
    EXPECT_EQ(fields.at("NoNewPrivs"), "1");
    EXPECT_EQ(fields.at("Seccomp"), "2");  // filter mode
    for (const int dropped :
         {CAP_SYS_MODULE, CAP_SYS_RAWIO,   CAP_SYS_BOOT,      CAP_SYS_TIME,   CAP_NET_ADMIN,
          CAP_SYS_PTRACE, CAP_MAC_ADMIN,   CAP_MAC_OVERRIDE,  CAP_BPF,        CAP_PERFMON,
          CAP_SYSLOG,     CAP_AUDIT_WRITE, CAP_AUDIT_CONTROL, CAP_AUDIT_READ, CAP_SYS_PACCT,
          CAP_LEASE,      CAP_WAKE_ALARM,  CAP_BLOCK_SUSPEND, CAP_MKNOD,      CAP_DAC_READ_SEARCH})
        EXPECT_EQ(hex_mask(fields.at("CapBnd")) & (uint64_t{1} << dropped), 0u)
            << "capability " << dropped;
    EXPECT_EQ(fields.at("mknod"), "EPERM");
}

TEST(JailConfinementTest, DeniedSystemCallsFailAndTheAgentsMountsStillWork) {
    PV_SKIP_WITHOUT_PRIVILEGES();
    MemoryDevice disk(16 * kMiB);
    const auto fields = probe_jail(disk);
    ASSERT_FALSE(fields.empty());
    // Without the filter each of these would succeed or fail otherwise
    // (keyctl, setns with EBADF, ptrace and unshare succeed as root,
    // perf_event_open and io_uring_setup fault on the null pointer).
    for (const char* call :
         {"keyctl", "perf_event_open", "init_module", "setns", "ptrace", "unshare_user"})
        EXPECT_EQ(fields.at(call), "EPERM") << call;
    // The i386 ABI is filtered too (a process using an ABI missing from the
    // filter would be killed and report nothing).
    EXPECT_EQ(fields.at("keyctl_i386"), host_runs_i386_calls() ? "EPERM" : "unsupported");
    EXPECT_EQ(fields.at("clone3"), "ENOSYS");
    EXPECT_EQ(fields.at("io_uring_setup"), "ENOSYS");
    EXPECT_EQ(fields.at("mount"), "0");
    bool listed = false;
    for (const DeniedCall& call : denied_calls())
        listed = listed || std::string(call.name) == "keyctl";
    EXPECT_TRUE(listed);
}

}  // namespace
}  // namespace pv::sandbox::test
