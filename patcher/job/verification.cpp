#include "patcher/job/verification.hpp"

#include <fmt/format.h>

#include "guestfs/confined_read.hpp"
#include "imgfmt/image.hpp"

namespace pv::patcher {

namespace {

std::string qualified(const std::string& name, const std::string& architecture) {
    return architecture.empty() ? name : name + ":" + architecture;
}

std::string describe(const guestfs::InstalledPackage& package) {
    return fmt::format("{} {} ({})", qualified(package.name, package.architecture), package.version,
                       package.status);
}

// Why PACKAGE, the database's entry of EXPECTED's name and architecture,
// does not count; "" when it does.
std::string disagreement(const ExpectedPackage& expected, const guestfs::InstalledPackage& found) {
    const std::string who = qualified(expected.name, expected.architecture);
    if (found.version != expected.version)
        return fmt::format("{} is at {}, not {} as planned", who, found.version, expected.version);
    if (!found.installed)
        return fmt::format("{} {} is not fully installed (status \"{}\")", who, found.version,
                           found.status);
    return "";
}

std::string absent(const ExpectedPackage& expected,
                   const std::vector<guestfs::InstalledPackage>& same_name) {
    std::string message =
        fmt::format("{} is not installed (the plan installs {})",
                    qualified(expected.name, expected.architecture), expected.version);
    if (!same_name.empty()) {
        message += "; the image has";
        for (const auto& package : same_name)
            message += " " + describe(package);
    }
    return message;
}

}  // namespace

const guestfs::InstalledPackage* find_package(const guestfs::PackageDatabase& database,
                                              const std::string& name,
                                              const std::string& architecture) {
    for (const auto& package : database.packages)
        if (package.name == name && package.architecture == architecture)
            return &package;
    return nullptr;
}

std::vector<std::string> find_disagreements(const std::vector<ExpectedPackage>& expected,
                                            const guestfs::PackageDatabase& database) {
    std::vector<std::string> disagreements;
    for (const auto& wanted : expected) {
        // rpm keeps several versions of an install-only package (kernels):
        // any entry at the planned version counts.
        const auto* match = find_package(database, wanted.name, wanted.architecture);
        for (const auto& package : database.packages)
            if (package.name == wanted.name && package.architecture == wanted.architecture &&
                package.version == wanted.version)
                match = &package;
        std::vector<guestfs::InstalledPackage> same_name;
        for (const auto& package : database.packages)
            if (package.name == wanted.name && package.architecture != wanted.architecture)
                same_name.push_back(package);
        const std::string problem =
            match ? disagreement(wanted, *match) : absent(wanted, same_name);
        if (!problem.empty())
            disagreements.push_back(problem);
    }
    return disagreements;
}

Result<guestfs::PackageDatabase> verify_on_host(const std::string& overlay_path,
                                                guestfs::DatabaseKind kind,
                                                const std::vector<ExpectedPackage>& expected,
                                                std::chrono::milliseconds timeout) {
    // A fresh read-only view of the flushed file: no cached state of the
    // job's own object, and no writer thread in the forked reader.
    auto disk = PV_TRY(img::open_image(overlay_path, Access::ReadOnly, img::Backing::Allow));
    auto database = PV_TRY(guestfs::read_package_database_confined(*disk, kind, timeout));
    const auto disagreements = find_disagreements(expected, database);
    if (!disagreements.empty())
        return fail(make_error("verify the patched image (" + database.location + ")",
                               fmt::format("{}", fmt::join(disagreements, "; "))));
    return database;
}

}  // namespace pv::patcher
