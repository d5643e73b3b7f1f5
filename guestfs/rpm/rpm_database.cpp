#include "guestfs/rpm/rpm_database.hpp"

#include <fmt/format.h>
#include <rpm/header.h>
#include <rpm/rpmtag.h>
#include <sqlite3.h>

#include <algorithm>
#include <memory>
#include <string_view>

namespace pv::guestfs {

namespace {

constexpr std::string_view kSqliteMagic{"SQLite format 3\0", 16};
constexpr size_t kSqliteHeaderBytes = 100;

struct CloseDatabase {
    void operator()(sqlite3* database) const { sqlite3_close(database); }
};
struct FinalizeStatement {
    void operator()(sqlite3_stmt* statement) const { sqlite3_finalize(statement); }
};
struct FreeHeader {
    void operator()(Header header) const { headerFree(header); }
};
using Database = std::unique_ptr<sqlite3, CloseDatabase>;
using Statement = std::unique_ptr<sqlite3_stmt, FinalizeStatement>;
using OwnedHeader = std::unique_ptr<std::remove_pointer_t<Header>, FreeHeader>;

Error database_error(sqlite3* database, const std::string& what) {
    return make_error("read rpm's database", what + ": " + sqlite3_errmsg(database));
}

// Opens BYTES (which must outlive the result) as a read-only in-memory
// database that runs no trigger, view or schema-named function a hostile
// file defines.
Result<Database> open_in_memory(std::string& bytes) {
    sqlite3* raw = nullptr;
    const int opened = sqlite3_open_v2(":memory:", &raw, SQLITE_OPEN_READWRITE, nullptr);
    Database database(raw);
    if (opened != SQLITE_OK)
        return fail(make_error("read rpm's database", "SQLite cannot open a database in memory"));
    for (const auto& [option, value] :
         {std::pair{SQLITE_DBCONFIG_DEFENSIVE, 1}, std::pair{SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0},
          std::pair{SQLITE_DBCONFIG_ENABLE_TRIGGER, 0}, std::pair{SQLITE_DBCONFIG_ENABLE_VIEW, 0}})
        if (sqlite3_db_config(raw, option, value, nullptr) != SQLITE_OK)
            return fail(database_error(raw, "configure SQLite"));
    sqlite3_limit(raw, SQLITE_LIMIT_LENGTH, static_cast<int>(kMaxRpmHeaderBytes));
    // rpm runs its database in WAL mode (header bytes 18 and 19 are 2); a
    // database in memory has no log, so it is opened as a rollback-journal
    // one, which reads the same pages.
    bytes[18] = 1;
    bytes[19] = 1;
    auto* data = reinterpret_cast<unsigned char*>(bytes.data());
    if (sqlite3_deserialize(raw, "main", data, static_cast<sqlite3_int64>(bytes.size()),
                            static_cast<sqlite3_int64>(bytes.size()),
                            SQLITE_DESERIALIZE_READONLY) != SQLITE_OK)
        return fail(database_error(raw, "load the database file"));
    return database;
}

Result<Statement> prepare(sqlite3* database, const char* sql) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(database, sql, -1, &raw, nullptr) != SQLITE_OK)
        return fail(database_error(database, "query it"));
    return Statement(raw);
}

// rpm's own layout: a plain table Packages(hnum, blob).
Result<void> expect_packages_table(sqlite3* database) {
    auto statement =
        PV_TRY(prepare(database, "SELECT type FROM sqlite_master WHERE name = 'Packages'"));
    const int step = sqlite3_step(statement.get());
    if (step == SQLITE_DONE)
        return fail(make_error("read rpm's database", "it has no Packages table"));
    if (step != SQLITE_ROW)
        return fail(database_error(database, "read its schema"));
    const auto* type = reinterpret_cast<const char*>(sqlite3_column_text(statement.get(), 0));
    if (type == nullptr || std::string_view(type) != "table")
        return fail(make_error("read rpm's database", "its Packages is not a table"));
    return {};
}

bool printable(std::string_view text) {
    return std::all_of(text.begin(), text.end(), [](char c) { return c > ' ' && c < 0x7f; });
}

// The string TAG of HEADER (package HNUM), checked; "" when OPTIONAL and absent.
Result<std::string> field(Header header, rpmTagVal tag, const char* name, int64_t hnum,
                          bool optional) {
    const char* value = headerGetString(header, tag);
    if (value == nullptr && optional)
        return std::string();
    const std::string_view text = value == nullptr ? std::string_view() : value;
    if (text.empty())
        return fail(
            make_error("read rpm's database", fmt::format("package {} has no {}", hnum, name)));
    if (text.size() > kMaxFieldBytes || !printable(text))
        return fail(make_error("read rpm's database",
                               fmt::format("package {} has a {} that is not printable ASCII of "
                                           "at most {} bytes",
                                           hnum, name, kMaxFieldBytes)));
    return std::string(text);
}

Result<OwnedHeader> import_header(const void* blob, int size, int64_t hnum) {
    if (blob == nullptr || size <= 0)
        return fail(make_error("read rpm's database", fmt::format("package {} is empty", hnum)));
    // librpm checks the header's index against its data before it builds one.
    OwnedHeader header(
        headerImport(const_cast<void*>(blob), static_cast<unsigned>(size), HEADERIMPORT_COPY));
    if (!header)
        return fail(make_error("read rpm's database",
                               fmt::format("package {} is not a header librpm accepts", hnum)));
    return header;
}

Result<InstalledPackage> read_package(Header header, int64_t hnum) {
    InstalledPackage package;
    package.name = PV_TRY(field(header, RPMTAG_NAME, "name", hnum, false));
    const std::string version = PV_TRY(field(header, RPMTAG_VERSION, "version", hnum, false));
    const std::string release = PV_TRY(field(header, RPMTAG_RELEASE, "release", hnum, false));
    package.architecture = PV_TRY(field(header, RPMTAG_ARCH, "architecture", hnum, true));
    const uint64_t epoch = headerGetNumber(header, RPMTAG_EPOCH);
    package.version = (epoch != 0 ? std::to_string(epoch) + ":" : "") + version + "-" + release;
    package.status = "installed";
    package.installed = true;
    return package;
}

}  // namespace

Result<void> for_each_rpm_header(std::string bytes, const RpmHeaderVisitor& visit) {
    if (bytes.size() < kSqliteHeaderBytes ||
        bytes.compare(0, kSqliteMagic.size(), kSqliteMagic) != 0)
        return fail(make_error("read rpm's database", "it is not an SQLite database"));
    auto database = PV_TRY(open_in_memory(bytes));
    PV_TRY(expect_packages_table(database.get()));
    auto rows = PV_TRY(prepare(database.get(), "SELECT hnum, blob FROM Packages ORDER BY hnum"));
    for (size_t count = 0;; ++count) {
        const int step = sqlite3_step(rows.get());
        if (step == SQLITE_DONE)
            return {};
        if (step != SQLITE_ROW)
            return fail(database_error(database.get(), "read its packages"));
        if (count == kMaxPackages)
            return fail(make_error("read rpm's database",
                                   fmt::format("it lists more than {} packages", kMaxPackages)));
        const int64_t hnum = sqlite3_column_int64(rows.get(), 0);
        const auto header = PV_TRY(import_header(sqlite3_column_blob(rows.get(), 1),
                                                 sqlite3_column_bytes(rows.get(), 1), hnum));
        PV_TRY(visit(header.get(), hnum));
    }
}

Result<std::vector<InstalledPackage>> parse_rpm_database(std::string bytes) {
    std::vector<InstalledPackage> packages;
    PV_TRY(for_each_rpm_header(std::move(bytes), [&](Header header, int64_t hnum) -> Result<void> {
        auto package = PV_TRY(read_package(header, hnum));
        // Keys imported with rpm --import are headers too, not packages.
        if (package.name != "gpg-pubkey")
            packages.push_back(std::move(package));
        return {};
    }));
    return packages;
}

Result<std::vector<InstalledPackage>> read_rpm_database(GuestFilesystem& filesystem,
                                                        std::string& location) {
    for (const std::string directory : kRpmDatabaseDirs) {
        const std::string path = directory + "/" + kRpmDatabaseFile;
        const std::string where = path + " on " + filesystem.describe();
        if (PV_TRY(filesystem.exists(path))) {
            const std::string log = path + "-wal";
            if (PV_TRY(filesystem.exists(log))) {
                const auto text = filesystem.read_file(log, kMaxRpmDatabaseBytes);
                if (!text || !text->empty())
                    return fail(make_error(
                        "read " + where,
                        "rpm left a write-ahead log it has not folded in (" + log + ")"));
            }
            auto packages =
                parse_rpm_database(PV_TRY(filesystem.read_file(path, kMaxRpmDatabaseBytes)));
            if (!packages)
                return fail(with_context(packages.error(), "read " + where));
            location = where;
            return packages;
        }
        for (const char* older : {"Packages", "Packages.db"})
            if (PV_TRY(filesystem.exists(directory + "/" + older)))
                return fail(make_error(
                    "read the rpm database on " + filesystem.describe(),
                    fmt::format("{}/{} is an rpm database of a backend the host does not read "
                                "(Berkeley DB or ndb); only the sqlite backend of rpm 4.16 and "
                                "later is read",
                                directory, older)));
    }
    return fail(make_error("read the rpm database on " + filesystem.describe(),
                           fmt::format("there is no {} in {} or {}", kRpmDatabaseFile,
                                       kRpmDatabaseDirs[0], kRpmDatabaseDirs[1])));
}

}  // namespace pv::guestfs
