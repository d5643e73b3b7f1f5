// A guest maintainer script under the jail's confinement, in a real patch
// job: its postinst reports what it can reach (printed with --verbose), and
// the job must still succeed. The script runs as root in the guest chroot
// with the agent's capabilities minus CAP_SYS_ADMIN, CAP_SYS_CHROOT and
// CAP_SETPCAP, and the host kernel's knobs under /proc read-only.

#include <linux/capability.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "tests/e2e/patch/patch_test_support.hpp"

namespace pv::test {
namespace {

// Each line "probe KEY=VALUE" becomes one entry.
std::map<std::string, std::string> probes_in(const std::string& output) {
    std::map<std::string, std::string> probes;
    std::istringstream lines(output);
    std::string line;
    while (std::getline(lines, line)) {
        const size_t at = line.find("probe ");
        const size_t equals = line.find('=', at);
        if (at != std::string::npos && equals != std::string::npos)
            probes[line.substr(at + 6, equals - at - 6)] = line.substr(equals + 1);
    }
    return probes;
}

// Why each probe is what it is: without the agent's drops the script would
// have CAP_SYS_ADMIN (mount succeeds) and a writable /proc/sys of the host.
// Writability is asked with access(2) (`[ -w ]`, EROFS on a read-only
// mount), so a failing test never writes a host knob.
// clang-format off
constexpr const char kPostinst[] = R"sh(
echo "probe CapBnd=$(sed -n 's/^CapBnd:[[:space:]]*//p' /proc/self/status)"
echo "probe CapEff=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status)"
echo "probe Seccomp=$(sed -n 's/^Seccomp:[[:space:]]*//p' /proc/self/status)"
if mount -t tmpfs probe /mnt 2>/dev/null; then echo "probe mount=yes"; umount /mnt;
else echo "probe mount=no"; fi
if [ -w /proc/sys/kernel/core_pattern ]; then echo "probe core_pattern=writable";
else echo "probe core_pattern=refused"; fi
if [ -w /proc/sysrq-trigger ]; then echo "probe sysrq=writable";
else echo "probe sysrq=refused"; fi
exit 0
)sh";
// clang-format on

TEST(PatchConfinement, MaintainerScriptRunsConfinedAndTheJobSucceeds) {
    TempDir dir;
    const std::string image = copy_sample(dir, "sample-raw", "vm.raw");
    const std::string catalog = dir.file("catalog");
    const std::string root = dir.file("pkg");
    std::filesystem::create_directories(root + "/DEBIAN");
    std::filesystem::create_directories(catalog);
    std::ofstream(root + "/DEBIAN/control")
        << "Package: libssl3\nVersion: 3.0.99-1\nArchitecture: amd64\n"
           "Maintainer: patchvisor tests <tests@invalid>\nDescription: confinement probe\n";
    std::ofstream(root + "/DEBIAN/postinst") << "#!/bin/sh\n" << kPostinst;
    std::filesystem::permissions(root + "/DEBIAN/postinst", std::filesystem::perms(0755));
    const auto built = run("dpkg-deb --root-owner-group --build " + quote(root) + " " +
                           quote(catalog + "/libssl3_3.0.99-1_amd64.deb"));
    ASSERT_EQ(built.exit_code, 0) << built.output;
    const auto offered = catalog_packages(catalog);
    ASSERT_EQ(offered.size(), 1u);
    ASSERT_TRUE(dpkg_version_lower(installed_version(image, "libssl3"), offered[0].version));
    const auto result =
        patchvisor("patch " + quote(image) + " --catalog " + quote(catalog) + " --work-dir " +
                   quote(dir.file("work")) + " --sandbox jail --verbose");
    ASSERT_EQ(result.exit_code, 0) << result.output;
    EXPECT_EQ(installed_version(image, "libssl3"), offered[0].version);
    const auto probes = probes_in(result.output);
    ASSERT_TRUE(probes.count("CapBnd")) << result.output;
    const uint64_t bounding = std::stoull(probes.at("CapBnd"), nullptr, 16);
    for (const int dropped : {CAP_SYS_ADMIN, CAP_SYS_CHROOT, CAP_SETPCAP, CAP_SYS_MODULE, CAP_MKNOD,
                              CAP_SYS_PTRACE, CAP_NET_ADMIN})
        EXPECT_EQ(bounding & (uint64_t{1} << dropped), 0u) << "capability " << dropped;
    // What dpkg needs is still there.
    for (const int kept : {CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_SETUID})
        EXPECT_NE(bounding & (uint64_t{1} << kept), 0u) << "capability " << kept;
    EXPECT_EQ(probes.at("CapEff"), probes.at("CapBnd"));
    EXPECT_EQ(probes.at("Seccomp"), "2");
    EXPECT_EQ(probes.at("mount"), "no");
    EXPECT_EQ(probes.at("core_pattern"), "refused");
    EXPECT_EQ(probes.at("sysrq"), "refused");  // read-only, or absent without MAGIC_SYSRQ
}

}  // namespace
}  // namespace pv::test
