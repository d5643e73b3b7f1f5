#include "patcher/repo/fetch.hpp"

#include <filesystem>

#include <fmt/format.h>

namespace pv::patcher::repo {

Result<PackageFile> fetch_verified(const PlannedPackage& planned, const std::string& directory) {
    const std::string copy =
        directory + "/" + std::filesystem::path(planned.file).filename().string();
    std::error_code error;
    std::filesystem::copy_file(planned.file, copy, error);
    if (error)
        return fail(make_error("copy " + planned.file, error.message()));
    // The bytes first: nothing of a file that is not the signed one is parsed.
    const auto digest = PV_TRY(sha256_of_file(copy));
    if (digest.sha256 != planned.sha256 || digest.size != planned.size)
        return fail(
            make_error("check " + planned.file,
                       fmt::format("SHA256 {} and size {} do not match the signed Packages entry "
                                   "(SHA256 {}, size {})",
                                   digest.sha256, digest.size, planned.sha256, planned.size)));
    auto package = read_package_file(copy);
    if (!package)
        return fail(make_error("check " + planned.file, package.error().message()));
    if (package->name != planned.name || package->version != planned.to_version ||
        package->architecture != planned.architecture)
        return fail(
            make_error("check " + planned.file,
                       fmt::format("it is {} {} ({}), the Packages entry says {} {} ({})",
                                   package->name, package->version, package->architecture,
                                   planned.name, planned.to_version, planned.architecture)));
    return package;
}

}  // namespace pv::patcher::repo
