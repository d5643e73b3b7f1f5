#include "tests/e2e/patch/patch_test_support.hpp"

#include <filesystem>

#include <gtest/gtest.h>

namespace pv::test {

std::string image_artifact(const std::string& name) {
    const char* source = std::getenv("PV_SOURCE_DIR");
    const auto result = run(quote(std::string(source ? source : ".") + "/scripts/images") +
                            " path " + name + " 2>&1");
    if (result.exit_code != 0) {
        ADD_FAILURE() << result.output
                      << "(build the sample images: scripts/images samples "
                         "catalog)";
        return "";
    }
    return result.output.substr(0, result.output.find('\n'));
}

std::string copy_sample(const TempDir& dir, const std::string& name, const std::string& file_name) {
    const auto path = dir.file(file_name);
    const auto result =
        run("cp --sparse=always " + quote(image_artifact(name)) + " " + quote(path));
    EXPECT_EQ(result.exit_code, 0) << result.output;
    return path;
}

namespace {

// A raw file holding the ext4 filesystem of IMAGE: the image itself, its
// conversion to raw, or its first partition.
std::string filesystem_of(const TempDir& dir, const std::string& image) {
    std::string raw = image;
    if (run("qemu-img info " + quote(image) + " | grep -q '^file format: qcow2'").exit_code == 0) {
        raw = dir.file("converted.raw");
        std::filesystem::remove(raw);
        EXPECT_EQ(run("qemu-img convert -O raw " + quote(image) + " " + quote(raw)).exit_code, 0);
    }
    const auto start = run("partx -g -o START -n 1 " + quote(raw) + " 2>/dev/null");
    if (start.exit_code != 0 || start.output.empty())
        return raw;
    const auto partition = dir.file("partition.raw");
    std::filesystem::remove(partition);
    const auto copy = run("dd if=" + quote(raw) + " of=" + quote(partition) + " bs=512 skip=" +
                          std::to_string(std::stoull(start.output)) + " conv=sparse status=none");
    EXPECT_EQ(copy.exit_code, 0) << copy.output;
    return partition;
}

}  // namespace

std::string installed_version(const TempDir& dir, const std::string& image,
                              const std::string& package) {
    const auto admin = dir.file("dpkg-admin");
    std::filesystem::create_directories(admin + "/updates");
    const auto filesystem = filesystem_of(dir, image);
    const auto dump = run("debugfs -R " + quote("dump /var/lib/dpkg/status " + admin + "/status") +
                          " " + quote(filesystem));
    EXPECT_EQ(dump.exit_code, 0) << dump.output;
    const auto query = run("dpkg-query --admindir=" + quote(admin) + " -W -f='${Version}' " +
                           quote(package) + " 2>/dev/null");
    return query.exit_code == 0 ? query.output : "";
}

CommandOutput patchvisor(const std::string& arguments) {
    return run(quote(built_binary("patcher/cli/patchvisor")) + " " + arguments);
}

CommandOutput patch_job(const std::string& image, const std::string& catalog,
                        const std::string& work_dir, const std::string& extra) {
    const auto command = quote(built_binary("patcher/cli/patchvisor")) + " patch " + quote(image) +
                         " --catalog " + quote(catalog) + " --work-dir " + quote(work_dir) + " " +
                         extra;
    return run("sh -c " + quote("echo patchvisor-pid=$$; exec " + command));
}

void expect_failed_cleanly(const CommandOutput& result, const std::string& message,
                           const std::string& image, const std::string& sha) {
    EXPECT_EQ(result.exit_code, 1) << result.output;
    EXPECT_NE(result.output.find(message), std::string::npos) << result.output;
    EXPECT_NE(result.output.find("the original is unchanged"), std::string::npos);
    EXPECT_EQ(sha256_of_file(image), sha) << "the original must be byte-identical";
    const auto at = result.output.find("patchvisor-pid=");
    ASSERT_NE(at, std::string::npos) << result.output;
    const auto pid = std::to_string(std::stoul(result.output.substr(at + 15)));
    EXPECT_EQ(run("grep -c " + quote("^patchvisor-" + pid + "-") + " /proc/mounts").output, "0\n")
        << "a FUSE export of the job is still mounted";
    EXPECT_EQ(
        run("losetup -l -n -O BACK-FILE | grep -c " + quote("/run/patchvisor/" + pid + "-")).output,
        "0\n")
        << "a loop device of the job is still attached";
    EXPECT_EQ(run("ls -d /run/patchvisor/" + pid + "-* 2>/dev/null | wc -l").output, "0\n")
        << "the job's runtime directory is left behind";
}

}  // namespace pv::test
