// `patchvisor patch --sandbox microvm` on a host where hardware KVM cannot
// run the microVM's Linux guest (this one: kvm_pvm) must fail at once with
// the reason, exit 1, before any overlay is written, the original intact.

#include <chrono>
#include <filesystem>

#include <gtest/gtest.h>

#include "patcher/sandbox/sandbox.hpp"
#include "tests/e2e/patch/patch_test_support.hpp"

namespace pv::test {
namespace {

TEST(ForcedMicroVm, FailsFastWithoutHardwareKvm) {
    const std::string no_kvm = vmm::why_no_linux_guest(vmm::probe_host());
    if (no_kvm.empty())
        GTEST_SKIP() << "this host has hardware KVM, so --sandbox microvm is allowed here; "
                        "the refusal can only be seen on a host without it";
    TempDir dir;
    const auto image = copy_sample(dir, "sample-raw", "vm.raw");
    const auto sha = sha256_of_file(image);
    const auto catalog = image_artifact("catalog");
    ASSERT_FALSE(catalog.empty());
    const auto work = dir.file("work");

    const auto started = std::chrono::steady_clock::now();
    const auto result = patchvisor("patch " + quote(image) + " --catalog " + quote(catalog) +
                                   " --work-dir " + quote(work) + " --sandbox microvm");
    const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started);

    EXPECT_EQ(result.exit_code, 1) << result.output;
    EXPECT_NE(result.output.find("--sandbox microvm"), std::string::npos) << result.output;
    EXPECT_NE(result.output.find("no hardware virtualization"), std::string::npos) << result.output;
    EXPECT_NE(result.output.find("the original is unchanged"), std::string::npos) << result.output;
    EXPECT_EQ(result.output.find("  overlay "), std::string::npos)
        << "the job must stop before its overlay phase:\n"
        << result.output;
    EXPECT_LT(seconds.count(), 10.0) << "it must fail fast";
    EXPECT_EQ(sha256_of_file(image), sha) << "the original must be byte-identical";
    // Nothing written: not even the work directory holds a file.
    size_t files = 0;
    if (std::filesystem::exists(work))
        for (const auto& entry : std::filesystem::recursive_directory_iterator(work))
            files += entry.is_regular_file() ? 1 : 0;
    EXPECT_EQ(files, 0u) << "an overlay or log was written in " << work;
}

TEST(ForcedMicroVm, JsonReportNamesTheFailure) {
    if (vmm::why_no_linux_guest(vmm::probe_host()).empty())
        GTEST_SKIP() << "this host has hardware KVM; --sandbox microvm is allowed here";
    TempDir dir;
    const auto image = copy_sample(dir, "sample-raw", "vm.raw");
    const auto report = dir.file("report.json");
    const auto result =
        patchvisor("patch " + quote(image) + " --catalog " + quote(image_artifact("catalog")) +
                   " --work-dir " + quote(dir.file("work")) + " --sandbox microvm --json-report " +
                   quote(report));
    EXPECT_EQ(result.exit_code, 1) << result.output;
    const auto text = run("cat " + quote(report)).output;
    EXPECT_NE(text.find("\"result\": \"failed\""), std::string::npos) << text;
    EXPECT_NE(text.find("--sandbox microvm"), std::string::npos) << text;
}

}  // namespace
}  // namespace pv::test
