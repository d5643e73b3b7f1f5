#pragma once

// Initramfs images for Linux-guest tests: busybox (Debian's busybox-static)
// as the userland, a given /init script, and any extra files, packed by
// cpio (newc) and gzip, tools we did not write.

#include <string>
#include <utility>
#include <vector>

#include "tests/support/support.hpp"

namespace pv::test {

struct GuestFile {
    std::string host_path;     // a file on this machine
    std::string archive_path;  // where it goes in the initramfs, e.g. "bin/probe"
};

// Writes DIR/NAME.cpio.gz whose /init is INIT_SCRIPT (run by busybox sh,
// with PATH=/bin and every busybox applet linked in /bin, /proc, /sys and
// /dev already mounted) and returns its path; fails the test and returns ""
// if it cannot be built.
[[nodiscard]] std::string busybox_initramfs(const TempDir& dir, const std::string& name,
                                            const std::string& init_script,
                                            const std::vector<GuestFile>& extra_files = {});

// The sandbox kernel (`scripts/images path kernel-bzimage`); fails the test
// and returns "" when it is not built.
[[nodiscard]] std::string sandbox_kernel();

}  // namespace pv::test
