// --advisories: the Debian security tracker's JSON and OSV records, each
// matched by source package, release and fixed version.

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "patcher/repo/advisories.hpp"
#include "tests/support/support.hpp"

namespace pv::patcher::repo {
namespace {

class Advisories : public ::testing::Test {
  protected:
    std::string write(const std::string& name, const std::string& text) {
        const auto path = m_dir.file(name);
        std::ofstream(path) << text;
        return path;
    }
    Result<AdvisoryDatabase> load(const std::string& path) {
        return AdvisoryDatabase::load(path, {"openssl", "zlib"}, "bookworm", "12");
    }

    test::TempDir m_dir;
};

const char* const kTracker = R"({
  "openssl": {
    "CVE-2026-0001": {"releases": {"bookworm": {"status": "resolved", "fixed_version": "3.0.21-1"},
                                   "trixie": {"status": "resolved", "fixed_version": "3.5.0-1"}}},
    "CVE-2026-0002": {"releases": {"bookworm": {"status": "resolved", "fixed_version": "3.0.23-1"}}},
    "CVE-2026-0003": {"releases": {"bookworm": {"status": "open"}}},
    "CVE-2026-0004": {"releases": {"bookworm": {"status": "resolved", "fixed_version": "0"}}},
    "CVE-2026-0005": {"releases": {"bookworm": {"status": "resolved", "fixed_version": "3.0.19-1"}}}
  },
  "unrelated": {"CVE-2026-0009": {"releases": {"bookworm": {"status": "resolved", "fixed_version": "1"}}}}
})";

TEST_F(Advisories, TrackerCvesFixedBetweenInstalledAndPlanned) {
    auto database = load(write("tracker.json", kTracker));
    ASSERT_TRUE(database) << database.error().message();
    EXPECT_EQ(database->format(), "debian-security-tracker");
    const auto fixed = database->fixed_by({"openssl", "3.0.20-1", "3.0.22-1"});
    ASSERT_EQ(fixed.size(), 1u);
    EXPECT_EQ(fixed[0].id, "DEB-openssl-3.0.22-1");
    // 0002 is fixed only later, 0003 is open, 0004 never affected bookworm,
    // 0005 was fixed before the installed version.
    EXPECT_EQ(fixed[0].cves, std::vector<std::string>{"CVE-2026-0001"});
    EXPECT_TRUE(database->fixed_by({"zlib", "1", "2"}).empty());
}

TEST_F(Advisories, OsvRecordsByEcosystemAndFixedEvent) {
    auto database = load(write("osv.json", R"([
      {"id": "DSA-6000-1", "upstream": ["CVE-2026-0001", "not-a-cve"], "aliases": ["CVE-2026-0007"],
       "affected": [{"package": {"ecosystem": "Debian:12", "name": "openssl"},
                     "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.22-1"}]}]}]},
      {"id": "DSA-5999-1", "affected": [{"package": {"ecosystem": "Debian:11", "name": "openssl"},
                     "ranges": [{"type": "ECOSYSTEM", "events": [{"fixed": "3.0.22-1"}]}]}]},
      {"id": "DLA-1-1", "affected": [{"package": {"ecosystem": "Debian:12", "name": "other"},
                     "ranges": [{"type": "ECOSYSTEM", "events": [{"fixed": "1.0"}]}]}]}
    ])"));
    ASSERT_TRUE(database) << database.error().message();
    EXPECT_EQ(database->format(), "osv");
    const auto fixed = database->fixed_by({"openssl", "3.0.20-1", "3.0.22-1"});
    ASSERT_EQ(fixed.size(), 1u);
    EXPECT_EQ(fixed[0].id, "DSA-6000-1");
    EXPECT_EQ(fixed[0].cves, (std::vector<std::string>{"CVE-2026-0001", "CVE-2026-0007"}));
    EXPECT_TRUE(database->fixed_by({"openssl", "3.0.22-1", "3.0.23-1"}).empty());
}

TEST_F(Advisories, OneOsvRecordAndADirectoryOfThem) {
    const char* const record = R"({"id": "DEBIAN-CVE-2026-0008", "upstream": ["CVE-2026-0008"],
       "affected": [{"package": {"ecosystem": "Debian:12", "name": "zlib"},
                     "ranges": [{"type": "ECOSYSTEM", "events": [{"fixed": "1:1.2.13-2"}]}]}]})";
    auto single = load(write("one.json", record));
    ASSERT_TRUE(single) << single.error().message();
    EXPECT_EQ(single->fixed_by({"zlib", "1:1.2.13-1", "1:1.2.13-2"}).size(), 1u);
    std::filesystem::create_directory(m_dir.file("osv"));
    write("osv/DEBIAN-CVE-2026-0008.json", record);
    auto directory = load(m_dir.file("osv"));
    ASSERT_TRUE(directory) << directory.error().message();
    const auto fixed = directory->fixed_by({"zlib", "1:1.2.13-1", "1:1.2.13-2"});
    ASSERT_EQ(fixed.size(), 1u);
    EXPECT_EQ(fixed[0].cves, std::vector<std::string>{"CVE-2026-0008"});
}

TEST_F(Advisories, BadInputNamesTheFile) {
    const auto path = write("bad.json", "{\"openssl\": [1, 2");
    auto database = load(path);
    ASSERT_FALSE(database);
    EXPECT_NE(database.error().message().find(path), std::string::npos);
    auto wrong = load(write("wrong.json", R"({"openssl": {"CVE-1": {"releases": []}}})"));
    ASSERT_FALSE(wrong);
    EXPECT_NE(wrong.error().message().find("openssl.CVE-1.releases"), std::string::npos);
    EXPECT_FALSE(load(m_dir.file("absent.json")));
}

}  // namespace
}  // namespace pv::patcher::repo
