#include "guestfs/package_database.hpp"

#include "guestfs/dpkg/dpkg_database.hpp"
#include "guestfs/root.hpp"

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
        case DatabaseKind::Rpm:
            break;
    }
    return fail(
        make_error("read the rpm database on " + filesystem.describe(),
                   "the host cannot read rpm databases yet, so it cannot verify the result"));
}

Result<PackageDatabase> read_package_database(img::BlockDevice& disk, DatabaseKind kind) {
    auto root = PV_TRY(find_root_filesystem(disk));
    return read_package_database(*root, kind);
}

}  // namespace pv::guestfs
