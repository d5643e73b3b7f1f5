#pragma once

// What the device tests share: the guest (sandbox kernel, busybox initramfs
// with the programs from guest/), its command line, and reading what
// the guest's /init script printed on the console.

#include <string>
#include <vector>

#include "run_vmm.hpp"
#include "tests/support/support.hpp"

namespace pv::vmm::test {

// A guest's /init: SCRIPT, then "PV-INIT-DONE" and the i8042 reset. The
// script finds pv-vsock and pv-blk-zero (guest/) in /bin.
struct Guest {
    std::string kernel;
    std::string initramfs;
};
[[nodiscard]] Guest make_guest(const pv::test::TempDir& dir, const std::string& name,
                               const std::string& script);

// patchvisor-vmm's arguments for GUEST: kernel, initramfs, command line,
// memory and a wall-clock limit; the caller adds devices.
[[nodiscard]] std::vector<std::string> guest_arguments(const Guest& guest, int memory_mib,
                                                       int timeout_s);

// The rest of the first console line that starts with "MARKER " (the
// script's `echo "MARKER ..."`), or "" when there is none.
[[nodiscard]] std::string console_value(const VmmRun& run, const std::string& marker);
// Its first word (a digest before sha256sum's "  -", a number).
[[nodiscard]] std::string console_word(const VmmRun& run, const std::string& marker);

// The console transcript and the VMM's stderr, for failure messages.
[[nodiscard]] std::string transcript(const VmmRun& run);

// Expects the guest to have reached the end of its script and the VMM to
// have ended with the guest's reset (exit 0).
void expect_clean_end(const VmmRun& run);

// The first word of what COMMAND prints (sha256sum's digest), or "".
[[nodiscard]] std::string first_word_of(const std::string& command);

}  // namespace pv::vmm::test
