// The sample catalog (images/samples/catalog) against the sample image's
// package database: the catalog must offer libssl3 and openssl newer than
// the image has. Fails, never skips, when the images are not built.

#include <cstdlib>
#include <map>
#include <sstream>

#include <gtest/gtest.h>

#include "patcher/detect/catalog.hpp"
#include "patcher/detect/detect.hpp"
#include "tests/support/support.hpp"

namespace pv::patcher {
namespace {

std::string trimmed(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
        text.pop_back();
    return text;
}

// The path of an artifact, or "" with the reason in WHY.
std::string image_artifact(const std::string& name, std::string& why) {
    const char* source = std::getenv("PV_SOURCE_DIR");
    const std::string root = source ? source : PV_DETECT_SOURCE_DIR;
    const auto result =
        test::run(test::quote(root + "/scripts/images") + " path " + name + " 2>&1");
    if (result.exit_code != 0) {
        why = result.output;
        return "";
    }
    return trimmed(result.output);
}

// Installed packages from a dpkg status file, read here with a few lines
// rather than with our agent's parser, so this test does not rely on it.
std::vector<InstalledPackage> installed_from_status(const std::string& status) {
    std::vector<InstalledPackage> packages;
    std::map<std::string, std::string> fields;
    auto flush = [&] {
        if (fields["Status"] == "install ok installed")
            packages.push_back({fields["Package"], fields["Version"], fields["Architecture"]});
        fields.clear();
    };
    std::istringstream lines(status);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.empty()) {
            flush();
            continue;
        }
        const auto colon = line.find(": ");
        if (line[0] != ' ' && colon != std::string::npos)
            fields[line.substr(0, colon)] = line.substr(colon + 2);
    }
    flush();
    return packages;
}

TEST(DetectSampleCatalog, OffersNewerLibssl3AndOpensslThanTheSampleImage) {
    std::string why;
    const std::string catalog_dir = image_artifact("catalog", why);
    ASSERT_FALSE(catalog_dir.empty()) << "the sample catalog is missing (run scripts/images "
                                         "catalog): "
                                      << why;
    const std::string image = image_artifact("sample-raw", why);
    ASSERT_FALSE(image.empty()) << "the sample image is missing (run scripts/images samples): "
                                << why;

    const auto catalog = load_catalog(catalog_dir);
    ASSERT_TRUE(catalog) << catalog.error().message();
    const auto status =
        test::run("debugfs -R 'cat /var/lib/dpkg/status' " + test::quote(image) + " 2>/dev/null");
    ASSERT_EQ(status.exit_code, 0) << status.output;
    const auto installed = installed_from_status(status.output);
    ASSERT_GT(installed.size(), 50u) << "too few packages in the sample image's dpkg status";

    const Detection detection = detect_patches(PackageFamily::deb, installed, *catalog);
    std::map<std::string, const Patch*> by_name;
    for (const Patch& patch : detection.patches)
        by_name[patch.package.name] = &patch;
    for (const char* name : {"libssl3", "openssl"}) {
        ASSERT_TRUE(by_name.count(name)) << name << " is not detected as a patch";
        const Patch& patch = *by_name[name];
        const auto order =
            compare_versions(PackageFamily::deb, patch.package.version, patch.installed_version);
        ASSERT_TRUE(order);
        EXPECT_GT(*order, 0) << name << ": catalog " << patch.package.version << ", image "
                             << patch.installed_version;
        // The same by dpkg, a tool we did not write.
        EXPECT_EQ(test::run("dpkg --compare-versions " + test::quote(patch.package.version) +
                            " gt " + test::quote(patch.installed_version))
                      .exit_code,
                  0);
        EXPECT_FALSE(patch.advisories.empty()) << name << " fixes no advisory of the manifest";
        EXPECT_EQ(patch.package.sha256, test::sha256_of_file(patch.package.path));
    }
}

}  // namespace
}  // namespace pv::patcher
