#pragma once

// Shared by the sandbox integration tests: an in-memory BlockDevice, the
// check that the machine can run these tests at all, and the checks that
// nothing (loop device, mount) was left behind.

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "imgfmt/block_device.hpp"
#include "patcher/sandbox/sandbox.hpp"
#include "tests/support/support.hpp"

namespace pv::sandbox::test {

// A disk in memory; counts flushes so tests can see them arrive.
class MemoryDevice final : public img::BlockDevice {
  public:
    explicit MemoryDevice(uint64_t size) : m_bytes(size) {}

    [[nodiscard]] uint64_t size() const override { return m_bytes.size(); }
    [[nodiscard]] const std::string& name() const override { return m_name; }
    [[nodiscard]] bool read_only() const override { return false; }
    [[nodiscard]] Result<void> read_at(std::span<std::byte> buffer, uint64_t offset) override {
        PV_TRY(check_range("read", offset, buffer.size()));
        std::memcpy(buffer.data(), m_bytes.data() + offset, buffer.size());
        return {};
    }
    [[nodiscard]] Result<void> write_at(std::span<const std::byte> buffer,
                                        uint64_t offset) override {
        PV_TRY(check_range("write", offset, buffer.size()));
        std::memcpy(m_bytes.data() + offset, buffer.data(), buffer.size());
        return {};
    }
    [[nodiscard]] Result<void> flush() override {
        ++flushes;
        return {};
    }

    [[nodiscard]] const std::vector<std::byte>& bytes() const { return m_bytes; }
    int flushes = 0;

  private:
    std::vector<std::byte> m_bytes;
    std::string m_name = "memory";
};

// Why these tests cannot run here ("" when they can): /dev/fuse,
// /dev/loop-control and new mount and pid namespaces are needed.
[[nodiscard]] std::string missing_privileges();

// Whether /proc/mounts mentions PATH (a mountpoint or a prefix of one).
[[nodiscard]] bool mounted_under(const std::string& path);
// Whether any loop device's backing file is under PATH.
[[nodiscard]] bool loop_backed_under(const std::string& path);

// Runs COMMAND and expects exit 0, showing its output otherwise.
void expect_command(const std::string& command);

// The stand-in agent (stand_in_agent.cpp) picks its behaviour from its
// name: options that start it as NAME in DIR, logging to DIR/agent.log.
[[nodiscard]] SandboxOptions options_for(const pv::test::TempDir& dir, const std::string& name,
                                         std::chrono::milliseconds timeout);
// One line from STREAM ("" on EOF or after TIMEOUT).
[[nodiscard]] std::string read_line(int stream, std::chrono::milliseconds timeout);
// The key=value words of a stand-in's report line.
[[nodiscard]] std::map<std::string, std::string> fields_of(const std::string& line);
// Every resource of this process's sandboxes is named by the runtime
// directory prefix /run/patchvisor/<pid>-: none may be left.
void expect_nothing_left();

}  // namespace pv::sandbox::test

#define PV_SKIP_WITHOUT_PRIVILEGES()                                                  \
    do {                                                                              \
        const std::string missing = ::pv::sandbox::test::missing_privileges();        \
        if (!missing.empty())                                                         \
            GTEST_SKIP() << "sandbox tests need " << missing << ", unavailable here"; \
    } while (false)
