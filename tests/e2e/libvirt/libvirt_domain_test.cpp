// patch and check --domain on libvirt's test driver: a shut-off domain's
// writable disks are patched together (versions read back with debugfs +
// dpkg-query), a domain that is running, paused or has a managed-save image
// is refused, and when one disk fails no disk is replaced.

#include <filesystem>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/e2e/libvirt/test_domains.hpp"
#include "tests/e2e/patch/patch_test_support.hpp"

namespace pv::test {
namespace {

class LibvirtDomain : public ::testing::Test {
  protected:
    void SetUp() override {
        m_catalog = image_artifact("catalog");
        ASSERT_FALSE(m_catalog.empty());
        m_versions = catalog_versions(m_catalog);
        ASSERT_EQ(m_versions.size(), 2u);
    }

    CommandOutput domain_job(const std::string& command, const std::string& uri,
                             const std::string& name, const std::string& extra = "") {
        return patchvisor(command + " --domain " + name + " --connect " + quote(uri) +
                          " --catalog " + quote(m_catalog) + " --work-dir " +
                          quote(m_dir.file("work")) + " --sandbox jail " + extra);
    }

    void expect_patched(const std::string& image) {
        for (const auto& [package, version] : m_versions)
            EXPECT_EQ(installed_version(image, package), version) << image << " " << package;
    }

    // No temp target of a commit is left next to the images.
    void expect_no_temp_files() {
        for (const auto& entry : std::filesystem::directory_iterator(m_dir.path()))
            EXPECT_EQ(entry.path().filename().string().find(".pv-tmp-"), std::string::npos)
                << entry.path();
    }

    TempDir m_dir;
    std::string m_catalog;
    std::map<std::string, std::string> m_versions;
};

TEST_F(LibvirtDomain, PatchesEveryWritableDiskOfAShutOffDomainTogether) {
    const auto raw = copy_sample(m_dir, "sample-raw", "root.raw");
    const auto qcow2 = copy_sample(m_dir, "sample-qcow2", "second.qcow2");
    const auto cdrom = m_dir.file("install.iso");
    must("head -c 1M /dev/urandom > " + quote(cdrom));
    const auto cdrom_sha = sha256_of_file(cdrom);
    const auto uri = write_test_node(
        m_dir,
        {{"web",
          5,
          false,
          {{"vda", raw, "raw"}, {"vdb", qcow2, "qcow2"}, {"sda", cdrom, "raw", "cdrom", true}}}});

    const auto check = domain_job("check", uri, "web");
    ASSERT_EQ(check.exit_code, 0) << check.output;
    EXPECT_NE(check.output.find("left alone (cdrom)"), std::string::npos) << check.output;

    const auto report_path = m_dir.file("report.json");
    const auto result = domain_job("patch", uri, "web", "--json-report " + quote(report_path));
    ASSERT_EQ(result.exit_code, 0) << result.output;
    expect_patched(raw);
    expect_patched(qcow2);
    EXPECT_EQ(sha256_of_file(cdrom), cdrom_sha) << "the cdrom must be left alone";
    const auto format = run("qemu-img info --output=json " + quote(qcow2));
    EXPECT_EQ(nlohmann::json::parse(format.output)["format"], "qcow2") << format.output;
    expect_no_temp_files();

    const auto report = nlohmann::json::parse(run("cat " + quote(report_path)).output);
    ASSERT_TRUE(report.is_array());
    ASSERT_EQ(report.size(), 2u);
    for (const auto& disk : report) {
        EXPECT_EQ(disk["result"], "patched");
        EXPECT_EQ(disk["domain"]["name"], "web");
        EXPECT_EQ(disk["domain"]["uri"], uri);
    }
    EXPECT_EQ(report[0]["domain"]["disk"], "vda");
    EXPECT_EQ(report[0]["image"], raw);
    EXPECT_EQ(report[1]["format"], "qcow2");

    const auto again = domain_job("patch", uri, "web");
    EXPECT_EQ(again.exit_code, 3) << again.output;
}

TEST_F(LibvirtDomain, RefusesADomainThatIsNotShutOff) {
    const auto image = copy_sample(m_dir, "sample-raw", "vm.raw");
    const auto sha = sha256_of_file(image);
    const auto uri = write_test_node(m_dir, {{"running", 1, false, {{"vda", image, "raw"}}},
                                             {"paused", 3, false, {{"vda", image, "raw"}}},
                                             {"saved", 5, true, {{"vda", image, "raw"}}}});
    const std::map<std::string, std::string> why = {
        {"running", "it is running"}, {"paused", "it is paused"}, {"saved", "managed-save"}};
    for (const auto& [name, message] : why)
        for (const auto* command : {"patch", "check"}) {
            const auto result = domain_job(command, uri, name);
            EXPECT_EQ(result.exit_code, 1) << result.output;
            EXPECT_NE(result.output.find(message), std::string::npos) << result.output;
        }
    EXPECT_EQ(sha256_of_file(image), sha);
    EXPECT_FALSE(std::filesystem::exists(m_dir.file("work")))
        << "a refused domain must not get as far as the work directory";
}

TEST_F(LibvirtDomain, ReplacesNoDiskWhenOneFails) {
    const auto good = copy_sample(m_dir, "sample-raw", "good.raw");
    const auto broken = copy_sample(m_dir, "sample-raw", "broken.raw");
    // Zeroes the ext4 superblock (bytes 1024-2047): no filesystem to patch.
    must("dd if=/dev/zero of=" + quote(broken) + " bs=1024 seek=1 count=1 conv=notrunc 2>&1");
    const auto good_sha = sha256_of_file(good);
    const auto broken_sha = sha256_of_file(broken);
    const auto uri =
        write_test_node(m_dir, {{"db", 5, false, {{"vda", good, "raw"}, {"vdb", broken, "raw"}}}});
    const auto report_path = m_dir.file("report.json");
    const auto result = domain_job("patch", uri, "db", "--json-report " + quote(report_path));
    EXPECT_EQ(result.exit_code, 1) << result.output;
    EXPECT_EQ(sha256_of_file(good), good_sha) << "the good disk must not be replaced alone";
    EXPECT_EQ(sha256_of_file(broken), broken_sha);
    expect_no_temp_files();
    const auto report = nlohmann::json::parse(run("cat " + quote(report_path)).output);
    ASSERT_EQ(report.size(), 2u);
    EXPECT_EQ(report[0]["result"], "failed");
    EXPECT_EQ(report[0]["failed_phase"], "commit");
    EXPECT_NE(report[0]["error"].get<std::string>().find("no disk of the domain is replaced"),
              std::string::npos)
        << report[0]["error"];
    EXPECT_EQ(report[1]["result"], "failed");
    EXPECT_NE(report[1]["failed_phase"], "commit");
}

// A disk the job cannot take fails the domain, and the other disk stays.
TEST_F(LibvirtDomain, RefusesDisksItCannotTake) {
    const auto image = copy_sample(m_dir, "sample-raw", "vm.raw");
    const auto sha = sha256_of_file(image);
    const auto other = m_dir.file("other.raw");
    must("truncate -s 64M " + quote(other));
    const auto uri = write_test_node(
        m_dir, {{"unprobed", 5, false, {{"vda", image, "raw"}, {"vdb", other, ""}}},
                {"vmdk", 5, false, {{"vda", image, "raw"}, {"vdb", other, "vmdk"}}},
                {"liar", 5, false, {{"vda", image, "raw"}, {"vdb", other, "qcow2"}}},
                {"cdonly", 5, false, {{"hdc", other, "raw", "cdrom", true}}}});
    const std::map<std::string, std::string> why = {{"unprobed", "never probes a format"},
                                                    {"vmdk", "format 'vmdk' is not supported"},
                                                    {"liar", "not a qcow2 image"},
                                                    {"cdonly", "no writable disk"}};
    for (const auto& [name, message] : why) {
        const auto result = domain_job("patch", uri, name);
        EXPECT_EQ(result.exit_code, 1) << name << ": " << result.output;
        EXPECT_NE(result.output.find(message), std::string::npos) << result.output;
    }
    EXPECT_EQ(sha256_of_file(image), sha);
}

// A patchvisor killed between the renames of two disks leaves one disk
// patched and one original, each whole; the same command again finishes.
TEST_F(LibvirtDomain, ARerunFinishesAHalfReplacedDomain) {
    const auto first = copy_sample(m_dir, "sample-raw", "first.raw");
    const auto second = copy_sample(m_dir, "sample-qcow2", "second.qcow2");
    const auto uri = write_test_node(
        m_dir, {{"half", 5, false, {{"vda", first, "raw"}, {"vdb", second, "qcow2"}}}});
    const auto alone = patchvisor("patch " + quote(first) + " --catalog " + quote(m_catalog) +
                                  " --work-dir " + quote(m_dir.file("work")));
    ASSERT_EQ(alone.exit_code, 0) << alone.output;
    const auto report_path = m_dir.file("report.json");
    const auto result = domain_job("patch", uri, "half", "--json-report " + quote(report_path));
    ASSERT_EQ(result.exit_code, 0) << result.output;
    const auto report = nlohmann::json::parse(run("cat " + quote(report_path)).output);
    EXPECT_EQ(report[0]["result"], "nothing-to-do");
    EXPECT_EQ(report[1]["result"], "patched");
    expect_patched(first);
    expect_patched(second);
}

}  // namespace
}  // namespace pv::test
