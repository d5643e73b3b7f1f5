#pragma once

// What the patch-job tests share: the sample image and catalog, and reading
// package versions out of an image with tools we did not write.

#include <map>
#include <string>
#include <vector>

#include "tests/support/support.hpp"

namespace pv::test {

// The path `scripts/images path NAME` prints; fails the test when unbuilt.
[[nodiscard]] std::string image_artifact(const std::string& name);

// A sparse copy of a sample image in DIR.
[[nodiscard]] std::string copy_sample(const TempDir& dir, const std::string& name,
                                      const std::string& file_name);

// The version of PACKAGE installed in IMAGE (raw: whole-disk ext4 or a
// partition table; qcow2), read by tests/support/image-packages with tools
// we did not write (qemu-img check, e2fsck -fn, debugfs, dpkg-query); "" when
// it is not installed. Any read error fails the test and returns
// "(unreadable)", which matches no version.
[[nodiscard]] std::string installed_version(const std::string& image, const std::string& package);

// The same read for several PACKAGES, reporting nothing to gtest: each
// package's version ("" when not installed), or ERROR saying why the image
// could not be read (then VERSIONS is empty).
struct ImageVersions {
    std::map<std::string, std::string> versions;
    std::string error;
};
[[nodiscard]] ImageVersions read_image_versions(const std::string& image,
                                                const std::vector<std::string>& packages);

// What the package files of a catalog directory say about themselves
// (`dpkg-deb -f FILE Package Version Architecture`, `rpm -qp` for .rpm):
// the expected versions of a patch test, never the tool's own report.
struct PackageFile {
    std::string path, name, version, architecture;
};
[[nodiscard]] std::vector<PackageFile> catalog_packages(const std::string& directory);

// Whether dpkg orders version A below version B (`dpkg --compare-versions`).
[[nodiscard]] bool dpkg_version_lower(const std::string& a, const std::string& b);

// Whether rpm orders version A below version B (rpm's own rpm.vercmp).
[[nodiscard]] bool rpm_version_lower(const std::string& a, const std::string& b);

// PACKAGE's VERSION-RELEASE in the ext4 IMAGE as rpm itself reads it: the
// database is copied out of /var/lib/rpm with debugfs into SCRATCH (emptied
// first: debugfs's rdump does not overwrite) and queried with
// rpm --dbpath; "" when rpm says PACKAGE is not installed.
[[nodiscard]] std::string rpm_installed_version(const std::string& image,
                                                const std::string& package,
                                                const std::string& scratch);

// Runs `patchvisor ARGUMENTS`.
[[nodiscard]] CommandOutput patchvisor(const std::string& arguments);

// Runs `patchvisor patch IMAGE --catalog CATALOG --work-dir WORK_DIR EXTRA`
// (without --catalog when CATALOG is empty: EXTRA then names the source)
// under a shell that first prints "patchvisor-pid=PID": the pid names the
// job's FUSE mounts and runtime directory ("patchvisor-PID-N",
// /run/patchvisor/PID-N/), so expect_failed_cleanly sees only this job's.
[[nodiscard]] CommandOutput patch_job(const std::string& image, const std::string& catalog,
                                      const std::string& work_dir, const std::string& extra);

// RESULT (of patch_job) is exit 1 with MESSAGE and "the original is
// unchanged" in its output, IMAGE still has SHA-256 SHA, and no FUSE mount,
// loop device or runtime directory of the job is left.
void expect_failed_cleanly(const CommandOutput& result, const std::string& message,
                           const std::string& image, const std::string& sha);

}  // namespace pv::test
