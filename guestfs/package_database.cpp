#include "guestfs/package_database.hpp"

#include "guestfs/dpkg/dpkg_database.hpp"
#include "guestfs/root.hpp"
#include "guestfs/rpm/rpm_database.hpp"

namespace pv::guestfs {

std::string_view database_name(DatabaseKind kind) {
    return kind == DatabaseKind::Dpkg ? "dpkg" : "rpm";
}

Result<PackageDatabase> read_package_database(GuestFilesystem& filesystem, DatabaseKind kind) {
    switch (kind) {
        case DatabaseKind::Dpkg: {
            // PV_TRY returns from inside its statement expression, so it is
            // never used inside an initializer whose other parts would leak.
            auto packages = PV_TRY(read_dpkg_database(filesystem));
            return PackageDatabase{kind,
                                   std::string(kDpkgStatusPath) + " on " + filesystem.describe(),
                                   std::move(packages)};
        }
        case DatabaseKind::Rpm: {
            std::string location;
            auto packages = PV_TRY(read_rpm_database(filesystem, location));
            return PackageDatabase{kind, std::move(location), std::move(packages)};
        }
    }
    return fail(make_error("read the package database on " + filesystem.describe(),
                           "unknown package database kind"));
}

Result<PackageDatabase> read_package_database(img::BlockDevice& disk, DatabaseKind kind) {
    auto root = PV_TRY(find_root_filesystem(disk));
    return read_package_database(*root, kind);
}

}  // namespace pv::guestfs
