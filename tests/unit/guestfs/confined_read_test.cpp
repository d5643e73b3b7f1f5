// The confined reader: its child may not open files or write anywhere but
// its pipe, is killed at the deadline, and its answer is parsed with the
// same limits as the guest's own files. The devices here misbehave inside
// read_at, which runs in the child.

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <functional>

#include "guestfs/confined_read.hpp"
#include "guestfs/reply.hpp"

namespace pv::guestfs {
namespace {

using namespace std::chrono_literals;

// A 1 MiB disk of zeroes that runs BEFORE_READ in every read.
class ScriptedDevice final : public img::BlockDevice {
  public:
    explicit ScriptedDevice(std::function<void()> before_read)
        : m_before_read(std::move(before_read)) {}
    [[nodiscard]] uint64_t size() const override { return 1 << 20; }
    [[nodiscard]] const std::string& name() const override { return m_name; }
    [[nodiscard]] bool read_only() const override { return true; }
    [[nodiscard]] Result<void> read_at(std::span<std::byte> buffer, uint64_t offset) override {
        PV_TRY(check_range("read", offset, buffer.size()));
        m_before_read();
        std::memset(buffer.data(), 0, buffer.size());
        return {};
    }
    [[nodiscard]] Result<void> write_at(std::span<const std::byte>, uint64_t) override {
        return fail(make_error("write", "read-only"));
    }
    [[nodiscard]] Result<void> flush() override { return {}; }

  private:
    std::function<void()> m_before_read;
    std::string m_name = "scripted-disk";
};

std::string error_of(img::BlockDevice& disk, std::chrono::milliseconds timeout = 30s) {
    const auto read = read_package_database_confined(disk, DatabaseKind::Dpkg, timeout);
    return read ? "" : read.error().message();
}

TEST(ConfinedRead, TheChildsOwnErrorArrivesWhole) {
    ScriptedDevice zeroes([] {});
    EXPECT_EQ(error_of(zeroes),
              "find the guest's root filesystem on scripted-disk: the whole disk: no "
              "ext4/xfs/btrfs signature");
}

TEST(ConfinedRead, OpeningAFileKillsTheChild) {
    ScriptedDevice opener([] { (void)::open("/etc/hostname", O_RDONLY); });
    const auto error = error_of(opener);
    EXPECT_NE(error.find("the reader process was killed by signal 31 (SIGSYS"), std::string::npos)
        << error;
}

TEST(ConfinedRead, WritingAnywhereButThePipeKillsTheChild) {
    ScriptedDevice writer([] { (void)!::write(STDERR_FILENO, "x", 1); });
    EXPECT_NE(error_of(writer).find("SIGSYS"), std::string::npos);
}

TEST(ConfinedRead, CreatingAProcessKillsTheChild) {
    ScriptedDevice forker([] { (void)::fork(); });
    EXPECT_NE(error_of(forker).find("SIGSYS"), std::string::npos);
}

TEST(ConfinedRead, AHangingReadEndsAtTheDeadline) {
    // A parser caught in a loop: sleeping would be a system call the
    // filter forbids.
    ScriptedDevice spinner([] {
        for (;;)
            asm volatile("");
    });
    const auto started = std::chrono::steady_clock::now();
    const auto error = error_of(spinner, 300ms);
    EXPECT_NE(error.find("the reader process timed out after 0.3 s"), std::string::npos) << error;
    EXPECT_LT(std::chrono::steady_clock::now() - started, 20s);
}

TEST(ConfinedRead, AMalformedAnswerIsRefused) {
    using detail::decode_reply;
    const char* bad[] = {
        "",
        "[]",
        R"({"error": 5})",
        R"({"kind": "dpkg", "location": "x"})",
        R"({"kind": "apk", "location": "x", "packages": []})",
        R"({"kind": "dpkg", "location": "x", "packages": [["a", "amd64", "1", "s"]]})",
        R"({"kind": "dpkg", "location": "x", "packages": [["a", "amd64", "1", "s", 1]]})",
        R"({"kind": "dpkg", "location": "x", "packages": [["a\n", "amd64", "1", "s", true]]})",
    };
    for (const char* reply : bad) {
        const auto decoded = decode_reply(reply, "disk.qcow2");
        ASSERT_FALSE(decoded) << reply;
        EXPECT_NE(decoded.error().message().find("disk.qcow2"), std::string::npos)
            << decoded.error().message();
    }
    const std::string long_name(kMaxFieldBytes + 1, 'a');
    EXPECT_FALSE(decode_reply(R"({"kind": "dpkg", "location": "x", "packages": [[")" + long_name +
                                  R"(", "amd64", "1", "s", true]]})",
                              "d"));
}

TEST(ConfinedRead, AnswersRoundTrip) {
    const PackageDatabase database{
        DatabaseKind::Dpkg,
        "/var/lib/dpkg/status on the whole disk of d",
        {{"libssl3", "amd64", "3.0.22-1~deb12u2", "install ok installed", true},
         {"old", "all", "1", "deinstall ok config-files", false}}};
    const auto decoded = detail::decode_reply(detail::encode_reply(database), "d");
    ASSERT_TRUE(decoded) << decoded.error().message();
    EXPECT_EQ(decoded->location, database.location);
    EXPECT_EQ(decoded->packages, database.packages);
    const auto error =
        detail::decode_reply(detail::encode_reply(fail(make_error("read X", "no such file"))), "d");
    ASSERT_FALSE(error);
    EXPECT_EQ(error.error().message(), "read X: no such file");
}

}  // namespace
}  // namespace pv::guestfs
