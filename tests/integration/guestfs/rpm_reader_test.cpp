// The host's reader of rpm's database (guestfs/rpm/), on an ext4 image of an
// RPM root that rpm itself initialised and installed packages into
// (tests/integration/agent/make-rpm-root: rpmbuild, rpm --initdb, rpm -i,
// mke2fs -d), read through imgfmt in the confined child as the job reads its
// overlay, and checked against `rpm --root -qa`. Databases rpm did not
// write cleanly are errors naming the file and the problem.

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "guestfs/confined_read.hpp"
#include "imgfmt/image.hpp"
#include "tests/support/support.hpp"

namespace pv::test {
namespace {

constexpr const char* kDatabase = "/var/lib/rpm/rpmdb.sqlite";

void write_file(const std::string& path, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << text;
}

// "name arch [epoch:]version-release" for each package.
using PackageSet = std::set<std::string>;

class RpmReader : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        s_dir = new TempDir;
        const char* source = std::getenv("PV_SOURCE_DIR");
        ASSERT_NE(source, nullptr) << "ctest sets PV_SOURCE_DIR";
        const auto made =
            run(quote(std::string(source) + "/tests/integration/agent/make-rpm-root") + " " +
                quote(s_dir->path()) + " 2>&1");
        ASSERT_EQ(made.exit_code, 0) << made.output;
    }
    static void TearDownTestSuite() {
        delete s_dir;
        s_dir = nullptr;
    }

    static std::string work(const std::string& name) { return s_dir->file(name); }

    // A copy of the RPM root as DIR/NAME, for changing it.
    std::string root_copy(const std::string& name) {
        const auto root = m_dir.file(name);
        must("cp -a " + quote(work("root")) + " " + quote(root));
        return root;
    }

    // An ext4 filesystem image of ROOT (mke2fs -d).
    std::string ext4_of(const std::string& root) {
        const auto image = root + ".ext4";
        must("mke2fs -q -F -t ext4 -d " + quote(root) + " " + quote(image) + " 64M");
        return image;
    }

    static Result<guestfs::PackageDatabase> read(const std::string& image) {
        auto disk = img::open_image(image, Access::ReadOnly, img::Backing::Allow);
        if (!disk)
            return fail(disk.error());
        return guestfs::read_package_database_confined(**disk, guestfs::DatabaseKind::Rpm,
                                                       std::chrono::seconds(60));
    }

    static std::string error_of(const std::string& image) {
        const auto database = read(image);
        EXPECT_FALSE(database) << image << " read without an error";
        return database ? "" : database.error().message();
    }

    // ROOT's database with its Packages table replaced by what SQL makes.
    std::string with_database_from(const std::string& name, const std::string& sql) {
        const auto root = root_copy(name);
        const auto path = root + kDatabase;
        std::filesystem::remove(path);
        sqlite3* database = nullptr;
        EXPECT_EQ(sqlite3_open(path.c_str(), &database), SQLITE_OK);
        char* message = nullptr;
        EXPECT_EQ(sqlite3_exec(database, sql.c_str(), nullptr, nullptr, &message), SQLITE_OK)
            << (message ? message : "");
        sqlite3_free(message);
        sqlite3_close(database);
        return ext4_of(root);
    }

    TempDir m_dir;
    static TempDir* s_dir;
};

TempDir* RpmReader::s_dir = nullptr;

TEST_F(RpmReader, ReadsTheDatabaseAsRpmQueryDoes) {
    const auto database = read(work("disk.raw"));
    ASSERT_TRUE(database) << database.error().message();
    EXPECT_NE(database->location.find(kDatabase), std::string::npos) << database->location;
    PackageSet read;
    for (const auto& package : database->packages) {
        EXPECT_TRUE(package.installed) << package.name;
        read.insert(package.name + " " + package.architecture + " " + package.version);
    }
    // rpm's own answer, epoch written as the agent reports it (0 left out).
    const auto query = run("rpm --root " + quote(work("root")) +
                           " --dbpath /var/lib/rpm -qa --qf "
                           "'%{NAME} %{ARCH} %|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\n'");
    ASSERT_EQ(query.exit_code, 0) << query.output;
    PackageSet expected;
    std::istringstream lines(query.output);
    for (std::string line; std::getline(lines, line);)
        if (!line.empty())
            expected.insert(line);
    EXPECT_GE(expected.size(), 3u) << query.output;
    EXPECT_EQ(read, expected);
}

TEST_F(RpmReader, AWriteAheadLogLeftBesideTheDatabaseIsAnError) {
    const auto root = root_copy("wal");
    write_file(root + kDatabase + "-wal", std::string(4096, 'w'));
    const auto message = error_of(ext4_of(root));
    EXPECT_NE(message.find(std::string(kDatabase) + " on "), std::string::npos) << message;
    EXPECT_NE(message.find("write-ahead log"), std::string::npos) << message;
}

TEST_F(RpmReader, ABerkeleyDbDatabaseIsRefusedByName) {
    const auto root = root_copy("bdb");
    std::filesystem::remove(root + kDatabase);
    write_file(root + "/var/lib/rpm/Packages", std::string(8192, '\0'));
    const auto message = error_of(ext4_of(root));
    EXPECT_NE(message.find("/var/lib/rpm/Packages"), std::string::npos) << message;
    EXPECT_NE(message.find("Berkeley DB"), std::string::npos) << message;
}

TEST_F(RpmReader, NoDatabaseIsAnError) {
    const auto root = root_copy("none");
    std::filesystem::remove(root + kDatabase);
    const auto message = error_of(ext4_of(root));
    EXPECT_NE(message.find("there is no rpmdb.sqlite"), std::string::npos) << message;
}

TEST_F(RpmReader, FilesThatAreNotSqliteOrAreTruncatedAreErrors) {
    const auto original = work("root") + kDatabase;
    const auto size = std::filesystem::file_size(original);
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"garbage", "not an rpm database at all"},
        {"magic-only", std::string("SQLite format 3\0", 16) + std::string(200, 'x')},
        {"truncated", ""},
    };
    for (const auto& [name, text] : cases) {
        SCOPED_TRACE(name);
        const auto root = root_copy(name);
        if (name == "truncated")
            std::filesystem::resize_file(root + kDatabase, size / 2);
        else
            write_file(root + kDatabase, text);
        const auto message = error_of(ext4_of(root));
        EXPECT_NE(message.find(std::string(kDatabase) + " on "), std::string::npos) << message;
    }
}

TEST_F(RpmReader, APackagesViewIsRefusedNotRun) {
    const auto message =
        error_of(with_database_from("view",
                                    "CREATE TABLE real(hnum INTEGER PRIMARY KEY, blob BLOB);"
                                    "CREATE VIEW Packages AS SELECT * FROM real;"));
    EXPECT_NE(message.find("its Packages is not a table"), std::string::npos) << message;
}

TEST_F(RpmReader, AHeaderLibrpmRefusesIsAnErrorNamingThePackage) {
    const auto message = error_of(
        with_database_from("bad-header",
                           "CREATE TABLE Packages(hnum INTEGER PRIMARY KEY, blob BLOB NOT NULL);"
                           "INSERT INTO Packages VALUES(7, x'0000000200000010deadbeef');"));
    EXPECT_NE(message.find("package 7 is not a header librpm accepts"), std::string::npos)
        << message;
}

}  // namespace
}  // namespace pv::test
