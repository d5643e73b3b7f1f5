// The whole patch job in the microvm sandbox: the sandbox kernel, the agent
// initramfs, patchvisor-vmm with the overlay as virtio-blk and the agent on
// vsock. Only hardware KVM runs the Linux guest (shared/PVM.md): its main()
// runs it in the nested rig elsewhere.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "patcher/sandbox/sandbox.hpp"
#include "tests/e2e/patch/patch_test_support.hpp"

namespace pv::test {
namespace {

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

}  // namespace
}  // namespace pv::test
