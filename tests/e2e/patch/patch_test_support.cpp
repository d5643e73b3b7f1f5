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

ImageVersions read_image_versions(const std::string& image,
                                  const std::vector<std::string>& packages) {
    const char* source = std::getenv("PV_SOURCE_DIR");
    std::string command =
        quote(std::string(source ? source : ".") + "/tests/support/image-packages") + " " +
        quote(image);
    for (const auto& package : packages)
        command += " " + quote(package);
    const auto read = run(command);
    ImageVersions result;
    // One line "PACKAGE VERSION" per package, in order; "-" = not installed.
    size_t at = 0;
    for (const auto& package : packages) {
        const auto end = read.output.find('\n', at);
        const auto prefix = package + " ";
        if (read.exit_code != 0 || end == std::string::npos ||
            read.output.compare(at, prefix.size(), prefix) != 0) {
            result.versions.clear();
            result.error = "cannot read " + package + " from " + image + ":\n" + read.output;
            return result;
        }
        const auto version = read.output.substr(at + prefix.size(), end - at - prefix.size());
        result.versions[package] = version == "-" ? "" : version;
        at = end + 1;
    }
    return result;
}

std::string installed_version(const std::string& image, const std::string& package) {
    const auto read = read_image_versions(image, {package});
    if (!read.error.empty()) {
        ADD_FAILURE() << read.error;
        return "(unreadable)";
    }
    return read.versions.at(package);
}

std::vector<PackageFile> catalog_packages(const std::string& directory) {
    std::vector<PackageFile> packages;
    for (const auto& entry : std::filesystem::directory_iterator(directory)) {
        const auto path = entry.path().string();
        const auto extension = entry.path().extension();
        std::string query;
        if (extension == ".deb")
            query = "dpkg-deb -f " + quote(path) + " Package Version Architecture | cut -d' ' -f2";
        else if (extension == ".rpm")
            query =
                "rpm -qp --nosignature --qf '%{NAME}\\n%{EPOCH}:%{VERSION}-%{RELEASE}\\n"
                "%{ARCH}\\n' " +
                quote(path) + " 2>/dev/null | sed '2s/^(none)://'";
        else
            continue;
        const auto fields = run(query);
        std::vector<std::string> lines;
        for (size_t at = 0, end; (end = fields.output.find('\n', at)) != std::string::npos;
             at = end + 1)
            lines.push_back(fields.output.substr(at, end - at));
        if (fields.exit_code != 0 || lines.size() != 3) {
            ADD_FAILURE() << "cannot read the control fields of " << path << ":\n" << fields.output;
            continue;
        }
        packages.push_back({path, lines[0], lines[1], lines[2]});
    }
    if (packages.empty())
        ADD_FAILURE() << "no package files in " << directory;
    return packages;
}

bool dpkg_version_lower(const std::string& a, const std::string& b) {
    return run("dpkg --compare-versions " + quote(a) + " lt " + quote(b)).exit_code == 0;
}

std::string rpm_installed_version(const std::string& image, const std::string& package,
                                  const std::string& scratch) {
    std::filesystem::remove_all(scratch);
    std::filesystem::create_directories(scratch);
    must("debugfs -R " + quote("rdump /var/lib/rpm " + scratch) + " " + quote(image) +
         " >/dev/null 2>&1");
    const auto query = run("rpm --dbpath " + quote(scratch + "/rpm") + " -q --qf " +
                           quote("%{VERSION}-%{RELEASE}") + " " + quote(package));
    return query.exit_code == 0 ? query.output : "";
}

bool rpm_version_lower(const std::string& a, const std::string& b) {
    // Through the environment, so no version needs quoting for rpm's macros.
    const auto order = run("A=" + quote(a) + " B=" + quote(b) +
                           " rpm --eval '%{lua: print(rpm.vercmp(os.getenv(\"A\"), "
                           "os.getenv(\"B\")))}' 2>&1");
    if (order.exit_code != 0 ||
        (order.output != "-1\n" && order.output != "0\n" && order.output != "1\n"))
        ADD_FAILURE() << "rpm cannot compare " << a << " and " << b << ": " << order.output;
    return order.output == "-1\n";
}

CommandOutput patchvisor(const std::string& arguments) {
    return run(quote(built_binary("patcher/cli/patchvisor")) + " " + arguments);
}

CommandOutput patch_job(const std::string& image, const std::string& catalog,
                        const std::string& work_dir, const std::string& extra) {
    const auto command = quote(built_binary("patcher/cli/patchvisor")) + " patch " + quote(image) +
                         (catalog.empty() ? "" : " --catalog " + quote(catalog)) + " --work-dir " +
                         quote(work_dir) + " " + extra;
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
