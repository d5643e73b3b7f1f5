// The whole patch job in the microvm sandbox: the sandbox kernel, the agent
// initramfs, patchvisor-vmm with the overlay as virtio-blk and the agent on
// vsock. Only hardware KVM runs the Linux guest (shared/PVM.md): its main()
// runs it in the nested rig elsewhere.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "patcher/sandbox/sandbox.hpp"
#include "tests/e2e/patch/patch_test_support.hpp"
#include "tests/linux/support/guest_initramfs.hpp"
#include "vmm/vm_config.hpp"

namespace pv::test {
namespace {

// Points the patchvisor processes these tests start at this build's VMM and
// the cached sandbox kernel, with INITRAMFS as the guest's userland.
void use_microvm(const std::string& initramfs) {
    ::setenv("PV_VMM", built_binary("vmm/patchvisor-vmm").c_str(), 1);
    ::setenv("PV_KERNEL", image_artifact("kernel-bzimage").c_str(), 1);
    ::setenv("PV_INITRAMFS", initramfs.c_str(), 1);
}

// Every package a job reported changed is installed in IMAGE at the version
// the catalog's own file carries (dpkg-deb -f), read back by
// tests/support/image-packages (qemu-img check, e2fsck -fn, debugfs,
// dpkg-query), and at least one package changed.
void expect_patched_to_catalog(const std::string& image, const nlohmann::json& report,
                               const std::string& catalog) {
    std::map<std::string, std::string> shipped;
    for (const auto& file : catalog_packages(catalog))
        shipped[file.name] = file.version;
    std::vector<std::string> names;
    for (const auto& change : report["packages"])
        names.push_back(change["name"].get<std::string>());
    ASSERT_FALSE(names.empty()) << report.dump(2);
    const auto read = read_image_versions(image, names);
    ASSERT_TRUE(read.error.empty()) << image << ": " << read.error;
    for (const auto& name : names) {
        EXPECT_EQ(read.versions.at(name), shipped[name]) << image << ": " << name;
    }
}

TEST(LinuxMicroVm, PatchesTheRawSampleInPlace) {
    TempDir dir;
    const auto image = copy_sample(dir, "sample-raw", "vm.raw");
    const auto catalog = image_artifact("catalog");
    const auto kernel = image_artifact("kernel-bzimage");
    const auto initramfs = image_artifact("initramfs");
    ASSERT_FALSE(catalog.empty() || kernel.empty() || initramfs.empty());
    const auto report_path = dir.file("report.json");
    const auto environment = "PV_VMM=" + quote(built_binary("vmm/patchvisor-vmm")) +
                             " PV_KERNEL=" + quote(kernel) + " PV_INITRAMFS=" + quote(initramfs);
    const auto result = run(
        environment + " " + quote(built_binary("patcher/cli/patchvisor")) + " patch " +
        quote(image) + " --catalog " + quote(catalog) + " --work-dir " + quote(dir.file("work")) +
        " --sandbox microvm --timeout-s 300 --json-report " + quote(report_path) + " 2>&1");
    ASSERT_EQ(result.exit_code, 0) << result.output;
    const auto report = nlohmann::json::parse(run("cat " + quote(report_path)).output);
    EXPECT_EQ(report["sandbox"]["kind"], "microvm");
    EXPECT_EQ(report["result"], "patched");
    for (const auto& change : report["packages"]) {
        const auto name = change["name"].get<std::string>();
        EXPECT_EQ(installed_version(image, name), change["after"].get<std::string>()) << name;
    }
    const auto fsck = run("e2fsck -fn " + quote(image));
    EXPECT_EQ(fsck.exit_code, 0) << fsck.output;
    // The guest console is the sandbox's log: the kernel booted the agent.
    const auto log = run("cat " + quote(report["sandbox"]["agent_log"].get<std::string>())).output;
    EXPECT_NE(log.find("pv-agent: exit status 0"), std::string::npos) << log;
}

// qcow2 and the GPT sample, two microVMs at once: each image patched to the
// catalog's versions, checked with QEMU's and e2fsprogs' tools.
TEST(LinuxMicroVm, BatchOfTwoPatchesTheQcow2AndGptSamples) {
    TempDir dir;
    const auto qcow2 = copy_sample(dir, "sample-qcow2", "vm.qcow2");
    const auto gpt = copy_sample(dir, "sample-gpt", "vm-gpt.raw");
    const auto catalog = image_artifact("catalog");
    const auto initramfs = image_artifact("initramfs");
    ASSERT_FALSE(catalog.empty() || initramfs.empty());
    use_microvm(initramfs);
    const auto report_path = dir.file("batch.json");
    const auto result =
        run(quote(built_binary("patcher/cli/patchvisor")) +
            " batch --jobs 2 --sandbox microvm --timeout-s 600 --catalog " + quote(catalog) +
            " --work-dir " + quote(dir.file("work")) + " --json-report " + quote(report_path) +
            " " + quote(qcow2) + " " + quote(gpt) + " 2>&1");
    ASSERT_EQ(result.exit_code, 0) << result.output;
    const auto batch = nlohmann::json::parse(run("cat " + quote(report_path)).output);
    EXPECT_EQ(batch["summary"]["results"]["patched"], 2) << batch["summary"].dump(2);
    ASSERT_EQ(batch["reports"].size(), 2u);
    const std::vector<std::string> images = {qcow2, gpt};
    for (size_t i = 0; i < images.size(); ++i) {
        const auto& report = batch["reports"][i];
        EXPECT_EQ(report["sandbox"]["kind"], "microvm") << images[i];
        EXPECT_EQ(report["result"], "patched") << images[i];
        expect_patched_to_catalog(images[i], report, catalog);
    }
    EXPECT_EQ(batch["reports"][0]["format"], "qcow2");
    const auto check = run("qemu-img check -f qcow2 " + quote(qcow2));
    EXPECT_EQ(check.exit_code, 0) << check.output;
}

// An RPM guest (make-rpm-root --repo: rpm's own root, a bare ext4 disk)
// patched from its signed rpm-md repository in the microVM: libsolv's plan
// installed by the guest's rpm, read back with rpm --dbpath.
TEST(LinuxMicroVm, PatchesTheRpmGuestFromItsRepository) {
    TempDir dir;
    const char* source = std::getenv("PV_SOURCE_DIR");
    ASSERT_NE(source, nullptr) << "ctest sets PV_SOURCE_DIR";
    const auto made = run(quote(std::string(source) + "/tests/integration/agent/make-rpm-root") +
                          " " + quote(dir.file("rpm")) + " --repo 2>&1");
    ASSERT_EQ(made.exit_code, 0) << made.output;
    const auto image = dir.file("rpm/disk.raw");
    const auto initramfs = image_artifact("initramfs");
    ASSERT_FALSE(initramfs.empty());
    use_microvm(initramfs);
    const auto report_path = dir.file("report.json");
    const auto result =
        run(quote(built_binary("patcher/cli/patchvisor")) + " patch " + quote(image) + " --repo " +
            quote(dir.file("rpm/repo")) + " --work-dir " + quote(dir.file("work")) +
            " --sandbox microvm --timeout-s 600 --json-report " + quote(report_path) + " 2>&1");
    ASSERT_EQ(result.exit_code, 0) << result.output;
    const auto report = nlohmann::json::parse(run("cat " + quote(report_path)).output);
    EXPECT_EQ(report["sandbox"]["kind"], "microvm");
    EXPECT_EQ(report["result"], "patched");
    EXPECT_EQ(report["package_manager"], "rpm");
    EXPECT_EQ(rpm_installed_version(image, "pv-test-daemon", dir.file("db")), "1.2-1");
    EXPECT_EQ(rpm_installed_version(image, "pv-test-libnew", dir.file("db")), "1-1");
    EXPECT_EQ(rpm_installed_version(image, "pv-test-systemd", dir.file("db")), "1-1");
    const auto fsck = run("e2fsck -fn " + quote(image));
    EXPECT_EQ(fsck.exit_code, 0) << fsck.output;
}

// Guests that never bring up the agent: a kernel panic (init exits), one
// that stays silent, one that floods the serial console. Each ends the job
// with its own clear error, the original byte-identical, no VMM left, and
// the console log no larger than the VMM's serial limit.
TEST(LinuxMicroVm, FailingGuestsEndTheJobWithAClearError) {
    TempDir dir;
    const auto image = copy_sample(dir, "sample-raw", "vm.raw");
    const auto catalog = image_artifact("catalog");
    ASSERT_FALSE(catalog.empty());
    const auto sha = sha256_of_file(image);
    struct Guest {
        std::string name, init, message;
    };
    const std::vector<Guest> guests = {
        {"panic", "echo pv-test: init exits\nexit 1", "the guest kernel panicked"},
        {"silent", "while :; do sleep 3600; done", "did not connect within"},
        {"flood", "yes pv-test-flood-line > /dev/console", "did not connect within"},
    };
    for (const auto& guest : guests) {
        SCOPED_TRACE(guest.name);
        const auto initramfs = busybox_initramfs(dir, guest.name, guest.init);
        ASSERT_FALSE(initramfs.empty());
        use_microvm(initramfs);
        const auto work = dir.file("work-" + guest.name);
        const auto result = patch_job(image, catalog, work, "--sandbox microvm --timeout-s 300");
        expect_failed_cleanly(result, guest.message, image, sha);
        EXPECT_NE(run("pgrep -x patchvisor-vmm").exit_code, 0)
            << "a patchvisor-vmm outlived its job";
        // The job keeps the guest console of a failed run in its work dir.
        auto log = run("ls " + quote(work) + "/*.agent.log").output;
        ASSERT_FALSE(log.empty()) << "no console log kept in " << work;
        log.pop_back();
        struct stat written {};
        ASSERT_EQ(::stat(log.c_str(), &written), 0) << log;
        EXPECT_LE(static_cast<uint64_t>(written.st_size), vmm::VmConfig{}.serial_output_limit)
            << log;
        if (guest.name == "flood") {
            // The flood really ran while the host waited for the agent.
            const auto lines = run("grep -c pv-test-flood-line " + quote(log)).output;
            EXPECT_GE(std::atol(lines.c_str()), 100) << log;
        }
    }
}

}  // namespace
}  // namespace pv::test
