// Catalog reading on package files built by dpkg-deb and rpmbuild, corrupt
// files, and manifests with wrong types.

#include "patcher/detect/catalog.hpp"

#include <filesystem>
#include <fstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/support.hpp"
#include "tests/unit/detect/test_packages.hpp"

namespace pv::patcher {
namespace {

using test::TempDir;
using ::testing::HasSubstr;

void write_file(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
}

TEST(DetectPackageFile, ReadsDebControlFieldsForEveryCompression) {
    TempDir directory;
    for (const char* compression : {"gzip", "xz", "zstd", "none"}) {
        const std::string deb = test::build_deb(
            directory.path(), {"libdemo1", "2:1.4-3~deb12u1", "amd64", compression});
        const auto package = read_package_file(deb);
        ASSERT_TRUE(package) << compression << ": " << package.error().message();
        EXPECT_EQ(package->family, PackageFamily::deb);
        EXPECT_EQ(package->name, "libdemo1");
        EXPECT_EQ(package->version, "2:1.4-3~deb12u1");
        EXPECT_EQ(package->architecture, "amd64");
        EXPECT_EQ(package->path, deb);
        EXPECT_EQ(package->sha256, test::sha256_of_file(deb)) << compression;
        EXPECT_EQ(package->size, std::filesystem::file_size(deb));
    }
}

TEST(DetectPackageFile, ReadsRpmHeader) {
    TempDir directory;
    const std::string with_epoch =
        test::build_rpm(directory.path(), {"demo", "1.2", "3.el9", "1", "x86_64"});
    auto package = read_package_file(with_epoch);
    ASSERT_TRUE(package) << package.error().message();
    EXPECT_EQ(package->family, PackageFamily::rpm);
    EXPECT_EQ(package->name, "demo");
    EXPECT_EQ(package->version, "1:1.2-3.el9");
    EXPECT_EQ(package->architecture, "x86_64");
    EXPECT_EQ(package->sha256, test::sha256_of_file(with_epoch));

    const std::string noarch =
        test::build_rpm(directory.path(), {"demo-doc", "0.9", "1", "", "noarch"});
    package = read_package_file(noarch);
    ASSERT_TRUE(package) << package.error().message();
    EXPECT_EQ(package->version, "0.9-1");  // no Epoch tag, no "0:"
    EXPECT_EQ(package->architecture, "noarch");
}

TEST(DetectPackageFile, CorruptFilesAreErrorsNamingTheFile) {
    TempDir directory;
    const std::string good = test::build_deb(directory.path(), {"libdemo1", "1.0-1"});
    const std::string truncated = directory.file("truncated.deb");
    const auto size = std::filesystem::file_size(good);
    std::filesystem::copy_file(good, truncated);
    std::filesystem::resize_file(truncated, size / 2);
    const std::string text = directory.file("text.deb");
    write_file(text, "this is not an ar archive\n");
    const std::string bad_rpm = directory.file("bad.rpm");
    write_file(bad_rpm, std::string(4096, 'x'));
    for (const std::string& path : {truncated, text, bad_rpm}) {
        const auto package = read_package_file(path);
        ASSERT_FALSE(package) << path;
        EXPECT_THAT(package.error().message(), HasSubstr(path));
    }
}

TEST(DetectCatalog, ReadsPackagesAndManifest) {
    TempDir directory;
    (void)test::build_deb(directory.path(), {"openssl", "3.0.22-1~deb12u2"});
    (void)test::build_deb(directory.path(), {"libssl3", "3.0.22-1~deb12u2"});
    (void)test::build_rpm(directory.path(), {"demo", "1.2", "3", "", "x86_64"});
    write_file(directory.file("README.txt"), "not a package\n");
    write_file(directory.file(".hidden.deb"), "ignored: hidden\n");
    write_file(directory.file("manifest.json"), R"({"advisories": [{
        "id": "DSA-9999-1", "cves": ["CVE-2026-0001"], "note": "extra fields are fine",
        "packages": [{"name": "libssl3", "fixed_version": "3.0.22-1~deb12u2", "extra": 1}]}],
        "generator": "test"})");
    const auto catalog = load_catalog(directory.path());
    ASSERT_TRUE(catalog) << catalog.error().message();
    ASSERT_EQ(catalog->packages.size(), 3u);
    EXPECT_EQ(catalog->packages[0].name, "demo");  // sorted by file name
    EXPECT_EQ(catalog->packages[1].name, "libssl3");
    EXPECT_EQ(catalog->packages[2].name, "openssl");
    EXPECT_TRUE(catalog->problems.empty());
    ASSERT_EQ(catalog->advisories.size(), 1u);
    EXPECT_EQ(catalog->advisories[0].id, "DSA-9999-1");
    EXPECT_EQ(catalog->advisories[0].cves, std::vector<std::string>{"CVE-2026-0001"});
    ASSERT_EQ(catalog->advisories[0].packages.size(), 1u);
    EXPECT_EQ(catalog->advisories[0].packages[0].fixed_version, "3.0.22-1~deb12u2");
}

TEST(DetectCatalog, OneBadFileDoesNotHideTheOthers) {
    TempDir directory;
    (void)test::build_deb(directory.path(), {"libssl3", "3.0.22-1~deb12u2"});
    write_file(directory.file("a-corrupt.deb"), "!<arch>\nnot really\n");
    write_file(directory.file("z-corrupt.rpm"), "garbage");

    const auto collected = load_catalog(directory.path(), CatalogPolicy::collect);
    ASSERT_TRUE(collected) << collected.error().message();
    ASSERT_EQ(collected->packages.size(), 1u);
    EXPECT_EQ(collected->packages[0].name, "libssl3");
    ASSERT_EQ(collected->problems.size(), 2u);
    EXPECT_EQ(collected->problems[0].file, directory.file("a-corrupt.deb"));
    EXPECT_EQ(collected->problems[1].file, directory.file("z-corrupt.rpm"));

    const auto strict = load_catalog(directory.path());
    ASSERT_FALSE(strict);
    EXPECT_THAT(strict.error().message(), HasSubstr("2 package file(s) cannot be read"));
    EXPECT_THAT(strict.error().message(), HasSubstr("a-corrupt.deb"));
    EXPECT_THAT(strict.error().message(), HasSubstr("z-corrupt.rpm"));
}

// libapt-pkg and librpm are set up once per process whichever thread comes
// first; concurrent jobs (patchvisor batch) load catalogs at the same time.
TEST(DetectCatalog, LoadsFromSeveralThreadsAtOnce) {
    TempDir directory;
    (void)test::build_deb(directory.path(), {"libssl3", "3.0.22-1~deb12u2", "amd64", "gzip"});
    (void)test::build_deb(directory.path(), {"openssl", "3.0.22-1~deb12u2", "amd64", "zstd"});
    (void)test::build_rpm(directory.path(), {"demo", "1.2", "3", "", "x86_64"});
    std::vector<std::thread> threads;
    std::vector<size_t> counts(4, 0);
    for (size_t i = 0; i < counts.size(); ++i) {
        threads.emplace_back([&, i] {
            for (int round = 0; round < 5; ++round) {
                const auto catalog = load_catalog(directory.path());
                counts[i] += catalog ? catalog->packages.size() : 0;
            }
        });
    }
    for (std::thread& thread : threads)
        thread.join();
    for (size_t count : counts)
        EXPECT_EQ(count, 15u);
}

TEST(DetectCatalog, MissingDirectoryIsAnError) {
    const auto catalog = load_catalog("/nonexistent/patchvisor-catalog");
    ASSERT_FALSE(catalog);
    EXPECT_THAT(catalog.error().message(), HasSubstr("/nonexistent/patchvisor-catalog"));
}

TEST(DetectCatalog, BadManifestFailsTheLoadNamingTheField) {
    TempDir directory;
    (void)test::build_deb(directory.path(), {"libssl3", "3.0.22-1~deb12u2"});
    write_file(directory.file("manifest.json"),
               R"({"advisories":[{"id":"A","packages":[{"name":"x","fixed_version":"1"},
                                                       {"name":7,"fixed_version":"1"}]}]})");
    const auto catalog = load_catalog(directory.path(), CatalogPolicy::collect);
    ASSERT_FALSE(catalog);
    EXPECT_EQ(catalog.error().message(), directory.file("manifest.json") +
                                             ": advisories[0].packages[1].name must be a string");
}

struct ManifestCase {
    const char* text;
    const char* message;
};

TEST(DetectManifest, WrongTypesAndMissingFieldsAreNamed) {
    const ManifestCase cases[] = {
        {"[]", "CATALOG/manifest.json: the manifest must be a JSON object"},
        {"{}", "CATALOG/manifest.json: advisories is missing"},
        {R"({"advisories": {}})", "CATALOG/manifest.json: advisories must be an array"},
        {R"({"advisories": [1]})", "CATALOG/manifest.json: advisories[0] must be an object"},
        {R"({"advisories": [{"packages": []}]})",
         "CATALOG/manifest.json: advisories[0].id is missing"},
        {R"({"advisories": [{"id": 5, "packages": []}]})",
         "CATALOG/manifest.json: advisories[0].id must be a string"},
        {R"({"advisories": [{"id": "", "packages": []}]})",
         "CATALOG/manifest.json: advisories[0].id must not be empty"},
        {R"({"advisories": [{"id": "A", "cves": "CVE-1", "packages": []}]})",
         "CATALOG/manifest.json: advisories[0].cves must be an array"},
        {R"({"advisories": [{"id": "A", "cves": ["CVE-1", null], "packages": []}]})",
         "CATALOG/manifest.json: advisories[0].cves[1] must be a string"},
        {R"({"advisories": [{"id": "A"}]})",
         "CATALOG/manifest.json: advisories[0].packages is missing"},
        {R"({"advisories": [{"id": "A", "packages": [{"name": "x"}]}]})",
         "CATALOG/manifest.json: advisories[0].packages[0].fixed_version is missing"},
        {R"({"advisories": [{"id": "A", "packages": [{"name": "x", "fixed_version": 3}]}]})",
         "CATALOG/manifest.json: advisories[0].packages[0].fixed_version must be a string"},
    };
    for (const ManifestCase& entry : cases) {
        const auto advisories = parse_manifest(entry.text, "CATALOG/manifest.json");
        ASSERT_FALSE(advisories) << entry.text;
        EXPECT_EQ(advisories.error().message(), entry.message) << entry.text;
    }
}

TEST(DetectManifest, InvalidJsonSaysSo) {
    const auto advisories = parse_manifest("{\"advisories\": [", "M");
    ASSERT_FALSE(advisories);
    EXPECT_THAT(advisories.error().message(), HasSubstr("M: not valid JSON"));
}

TEST(DetectManifest, CvesAreOptionalAndEmptyListIsFine) {
    const auto advisories = parse_manifest(
        R"({"advisories": [{"id": "A", "packages": [{"name": "x", "fixed_version": "1"}]}]})", "M");
    ASSERT_TRUE(advisories) << advisories.error().message();
    ASSERT_EQ(advisories->size(), 1u);
    EXPECT_TRUE((*advisories)[0].cves.empty());
    EXPECT_TRUE(parse_manifest(R"({"advisories": []})", "M"));
}

}  // namespace
}  // namespace pv::patcher
