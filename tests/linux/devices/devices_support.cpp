#include "devices_support.hpp"

#include <gtest/gtest.h>

#include "tests/linux/support/guest_initramfs.hpp"

namespace pv::vmm::test {

namespace {

// loglevel=4: kernel warnings (an I/O error, a driver complaint) still
// reach the console, routine messages do not interleave with the script's.
constexpr const char* kCommandLine =
    "console=ttyS0 reboot=k panic=-1 pci=off i8042.noaux loglevel=4";

}  // namespace

Guest make_guest(const pv::test::TempDir& dir, const std::string& name, const std::string& script) {
    const std::string programs = "tests/linux/devices/guest/";
    const std::vector<pv::test::GuestFile> files = {
        {pv::test::built_binary(programs + "pv-vsock"), "bin/pv-vsock"},
        {pv::test::built_binary(programs + "pv-blk-zero"), "bin/pv-blk-zero"}};
    Guest guest;
    guest.kernel = pv::test::sandbox_kernel();
    guest.initramfs =
        pv::test::busybox_initramfs(dir, name, script + "\necho PV-INIT-DONE\nreboot -f\n", files);
    return guest;
}

std::vector<std::string> guest_arguments(const Guest& guest, int memory_mib, int timeout_s) {
    return {"--kernel",    guest.kernel,
            "--initrd",    guest.initramfs,
            "--cmdline",   kCommandLine,
            "--mem-mib",   std::to_string(memory_mib),
            "--timeout-s", std::to_string(timeout_s)};
}

std::string console_value(const VmmRun& run, const std::string& marker) {
    const std::string prefix = marker + " ";
    for (const auto& line : run.serial)
        if (line.starts_with(prefix))
            return line.substr(prefix.size());
    return "";
}

std::string console_word(const VmmRun& run, const std::string& marker) {
    const std::string value = console_value(run, marker);
    return value.substr(0, value.find(' '));
}

std::string transcript(const VmmRun& run) {
    std::string text = "console:\n";
    for (const auto& line : run.serial)
        text += "  | " + line + "\n";
    return text + "stderr: " + run.stderr_text;
}

void expect_clean_end(const VmmRun& run) {
    EXPECT_NE(std::find(run.serial.begin(), run.serial.end(), "PV-INIT-DONE"), run.serial.end())
        << "the guest's script did not finish\n"
        << transcript(run);
    EXPECT_EQ(run.exit_code, 0) << transcript(run);
    EXPECT_EQ(run.summary.is_object() ? run.summary.value("exit_reason", "") : "", "reset")
        << run.stdout_text;
}

std::string first_word_of(const std::string& command) {
    const auto result = pv::test::run(command);
    EXPECT_EQ(result.exit_code, 0) << command << ":\n" << result.output;
    return result.output.substr(0, result.output.find_first_of(" \n"));
}

}  // namespace pv::vmm::test
