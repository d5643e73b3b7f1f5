// Boots the sandbox kernel with a tiny initramfs whose /init prints a marker
// and reboots. Needs hardware-assisted KVM (under kvm_pvm a Linux guest
// cannot run, shared/PVM.md): its main() runs it in the nested rig there.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "run_vmm.hpp"

namespace pv::vmm::test {
namespace {

constexpr const char* kMarker = "PATCHVISOR-LINUX-BOOT-OK";

std::string first_line_of(const std::string& command) {
    std::string output;
    if (FILE* pipe = popen(command.c_str(), "r")) {
        char buffer[4096];
        if (fgets(buffer, sizeof(buffer), pipe))
            output = buffer;
        if (pclose(pipe) != 0)
            output.clear();
    }
    while (!output.empty() && output.back() == '\n')
        output.pop_back();
    return output;
}

// One entry of a newc cpio archive (the initramfs format,
// Documentation/driver-api/early-userspace/buffer-format.rst).
void append_newc(std::string& archive, const std::string& name, uint32_t mode,
                 const std::string& data, uint32_t rdev_major = 0, uint32_t rdev_minor = 0) {
    static uint32_t inode = 1;
    archive += fmt::format(
        "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}"
        "{:08x}{:08x}",
        inode++, mode, 0, 0, 1, 0, data.size(), 0, 0, rdev_major, rdev_minor, name.size() + 1, 0);
    archive += name;
    archive.push_back('\0');
    archive.append((4 - archive.size() % 4) % 4, '\0');
    archive += data;
    archive.append((4 - archive.size() % 4) % 4, '\0');
}

// Compiles a static /init that prints the marker and reboots, and packs it.
std::string build_initramfs(const std::string& directory) {
    std::ofstream(directory + "/init.c") << "#include <stdio.h>\n#include <unistd.h>\n"
                                            "#include <sys/reboot.h>\n"
                                            "int main(void) { printf(\"\\n"
                                         << kMarker
                                         << "\\n\"); fflush(stdout); sync();\n"
                                            "reboot(RB_AUTOBOOT); return 1; }\n";
    std::string compile = "cc -static -Os -o " + directory + "/init " + directory + "/init.c";
    if (std::system(compile.c_str()) != 0)
        return {};
    std::string archive;
    append_newc(archive, "dev", 040755, "");
    append_newc(archive, "dev/console", 020600, "", 5, 1);
    append_newc(archive, "init", 0100755, slurp(directory + "/init"));
    append_newc(archive, "TRAILER!!!", 0, "");
    std::string path = directory + "/initramfs.cpio";
    std::ofstream(path, std::ios::binary) << archive;
    return path;
}

TEST(LinuxBoot, SandboxKernelBootsToInitAndReboots) {
    const char* source = std::getenv("PV_SOURCE_DIR");
    std::string root = source ? source : ".";
    std::string kernel = first_line_of(root + "/scripts/images path kernel-bzimage 2>/dev/null");
    ASSERT_FALSE(kernel.empty()) << "no sandbox kernel: run scripts/images kernel";

    char directory[] = "/tmp/pv-linux-boot.XXXXXX";
    ASSERT_NE(mkdtemp(directory), nullptr);
    std::string initramfs = build_initramfs(directory);
    ASSERT_FALSE(initramfs.empty()) << "could not build the static /init";

    auto run = run_vmm({"--kernel", kernel, "--initrd", initramfs, "--cmdline",
                        "console=ttyS0 reboot=k panic=-1 pci=off i8042.noaux", "--mem-mib", "256",
                        "--vcpus", "2", "--timeout-s", "120"});
    std::system((std::string("rm -rf ") + directory).c_str());
    bool saw_banner = std::any_of(run.serial.begin(), run.serial.end(), [](const auto& line) {
        return line.find("Linux version") != std::string::npos;
    });
    bool saw_marker = std::find(run.serial.begin(), run.serial.end(), kMarker) != run.serial.end();
    EXPECT_TRUE(saw_banner) << "no kernel banner on the serial console";
    EXPECT_TRUE(saw_marker) << "/init did not run; stderr: " << run.stderr_text;
    EXPECT_EQ(run.exit_code, 0) << run.stderr_text;
    EXPECT_EQ(run.summary["exit_reason"], "reset");
}

}  // namespace
}  // namespace pv::vmm::test
