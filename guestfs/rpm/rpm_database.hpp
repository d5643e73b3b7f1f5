#pragma once

// rpm's database as the host reads it: the sqlite backend of rpm 4.16 and
// later (rpmdb.sqlite, table Packages of header blobs), opened by SQLite
// from memory, read-only and defensive, and each header parsed by librpm's
// own headerImport, which checks its index against its data. Older
// backends (Berkeley DB's Packages file, ndb) are refused by name.

#include <rpm/header.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "guestfs/filesystem.hpp"
#include "guestfs/package_database.hpp"

namespace pv::guestfs {

// Where rpm keeps its database: Fedora and RHEL 9 under /usr/lib/sysimage
// (with /var/lib/rpm a link to it), others in /var/lib/rpm.
inline constexpr const char* kRpmDatabaseDirs[] = {"/usr/lib/sysimage/rpm", "/var/lib/rpm"};
inline constexpr const char* kRpmDatabaseFile = "rpmdb.sqlite";
// A large server's rpmdb.sqlite is a few hundred MiB.
inline constexpr size_t kMaxRpmDatabaseBytes = 512u << 20;
inline constexpr size_t kMaxRpmHeaderBytes = 64u << 20;

// Every package of the database whose file is BYTES (taken, because its
// header is rewritten to rollback-journal mode for an in-memory open).
// Errors: not an SQLite file, no Packages table (or one that is not a plain
// table), a blob librpm does not accept, a header without name, version or
// release, a field that is not printable ASCII or is over kMaxFieldBytes,
// more than kMaxPackages. Versions read as the agent reports them:
// "[epoch:]version-release", epoch 0 left out. rpm's gpg-pubkey entries
// (imported keys, not packages) are left out.
[[nodiscard]] Result<std::vector<InstalledPackage>> parse_rpm_database(std::string bytes);

// The same walk for callers that need more of each header than its name and
// version (libsolv's installed repository): VISIT gets every header librpm
// accepted, gpg-pubkey entries included, with its row number, and may stop
// the walk with an error. At most kMaxPackages headers.
using RpmHeaderVisitor = std::function<Result<void>(Header header, int64_t hnum)>;
[[nodiscard]] Result<void> for_each_rpm_header(std::string bytes, const RpmHeaderVisitor& visit);

// Finds and reads the database of FILESYSTEM; sets LOCATION to the path
// read. A write-ahead log left beside it (rpm stopped before folding it in)
// is an error: the main file alone does not say what is installed.
[[nodiscard]] Result<std::vector<InstalledPackage>> read_rpm_database(GuestFilesystem& filesystem,
                                                                      std::string& location);

}  // namespace pv::guestfs
