#pragma once

// Running QEMU's tools from the interop tests, and the comparisons they
// need: whole-disk reads through our BlockDevice against `qemu-img convert
// -O raw` of the same image.

#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/support.hpp"

namespace pv::img::interop {

using CommandResult = test::CommandOutput;
using test::quote;
using test::run;
using test::TempDir;
// Runs COMMAND and throws with its output unless it exits 0.
std::string must_run(const std::string& command);

[[nodiscard]] std::vector<std::byte> read_file(const std::string& path);

// PATH's virtual disk as QEMU sees it: `qemu-img convert -O raw` into SCRATCH.
[[nodiscard]] std::vector<std::byte> qemu_raw_view(const std::string& path,
                                                   const std::string& scratch);

// PATH's whole disk read through open_image (ReadOnly); empty + a gtest
// failure if it cannot be opened or read.
[[nodiscard]] std::vector<std::byte> our_view(const std::string& path, bool allow_backing);

// The offset of the first byte where A and B differ, or -1 if they are equal.
[[nodiscard]] long long first_difference(const std::vector<std::byte>& a,
                                         const std::vector<std::byte>& b);

}  // namespace pv::img::interop
