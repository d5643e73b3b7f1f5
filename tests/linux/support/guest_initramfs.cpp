#include "tests/linux/support/guest_initramfs.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace pv::test {

namespace {

// Runs before the test's own script: the mounts every guest needs.
constexpr const char* kPrologue =
    "#!/bin/busybox sh\n"
    "/bin/busybox --install -s /bin\n"
    "export PATH=/bin\n"
    "mount -t proc proc /proc\n"
    "mount -t sysfs sysfs /sys\n"
    "mount -t devtmpfs devtmpfs /dev 2>/dev/null\n";

}  // namespace

std::string busybox_initramfs(const TempDir& dir, const std::string& name,
                              const std::string& init_script,
                              const std::vector<GuestFile>& extra_files) {
    const auto busybox = run("command -v busybox").output;
    if (busybox.empty() ||
        run("file -b " + quote(busybox.substr(0, busybox.size() - 1)) + " | grep -q static")
                .exit_code != 0) {
        ADD_FAILURE()
            << "a static busybox is needed (scripts/install-deps installs busybox-static)";
        return "";
    }
    const auto root = dir.file(name + ".root");
    std::filesystem::create_directories(root);
    for (const char* directory : {"bin", "dev", "proc", "sys", "tmp", "mnt"})
        std::filesystem::create_directories(root + "/" + directory);
    must("install -m 0755 " + quote(busybox.substr(0, busybox.size() - 1)) + " " +
         quote(root + "/bin/busybox"));
    std::ofstream(root + "/init") << kPrologue << init_script << "\n";
    std::filesystem::permissions(root + "/init", std::filesystem::perms(0755));
    for (const auto& file : extra_files) {
        const auto target = root + "/" + file.archive_path;
        std::filesystem::create_directories(std::filesystem::path(target).parent_path());
        must("install -m 0755 " + quote(file.host_path) + " " + quote(target));
    }
    // The kernel opens /dev/console for init before devtmpfs is mounted.
    must("mknod -m 0600 " + quote(root + "/dev/console") + " c 5 1");
    const auto archive = dir.file(name + ".cpio.gz");
    const auto pack = run("cd " + quote(root) +
                          " && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet "
                          "--owner=0:0 | gzip -1 > " +
                          quote(archive));
    if (pack.exit_code != 0) {
        ADD_FAILURE() << "cannot pack " << archive << ":\n" << pack.output;
        return "";
    }
    return archive;
}

std::string sandbox_kernel() {
    const char* source = std::getenv("PV_SOURCE_DIR");
    const auto path = run(quote(std::string(source ? source : ".") + "/scripts/images") +
                          " path kernel-bzimage 2>&1");
    if (path.exit_code != 0) {
        ADD_FAILURE() << "no sandbox kernel (run scripts/images kernel):\n" << path.output;
        return "";
    }
    return path.output.substr(0, path.output.find('\n'));
}

}  // namespace pv::test
