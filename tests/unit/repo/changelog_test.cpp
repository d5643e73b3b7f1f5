// The changelog fallback: ids of the entries newer than the installed
// version, in libapt-pkg's version order.

#include <gtest/gtest.h>

#include "patcher/detect/library_setup.hpp"
#include "patcher/repo/changelog.hpp"

namespace pv::patcher::repo {
namespace {

const char* const kChangelog =
    "openssl (3.0.22-1~deb12u2) bookworm-security; urgency=medium\n"
    "\n"
    "  * Fix CVE-2026-0002 and CVE-2026-0003 (DSA-6001-1).\n"
    "\n"
    " -- Maintainer <m@example.org>  Mon, 01 Jun 2026 00:00:00 +0000\n"
    "\n"
    "openssl (3.0.22-1~deb12u1) bookworm-security; urgency=medium\n"
    "\n"
    "  * Fix CVE-2026-0001; CVE-2026-0002 again.\n"
    "\n"
    " -- Maintainer <m@example.org>  Mon, 01 May 2026 00:00:00 +0000\n"
    "\n"
    "openssl (3.0.20-1~deb12u2) bookworm; urgency=medium\n"
    "\n"
    "  * Fix CVE-2025-9999.\n"
    "\n"
    " -- Maintainer <m@example.org>  Mon, 01 Jan 2026 00:00:00 +0000\n";

class Changelog : public ::testing::Test {
  protected:
    void SetUp() override { ASSERT_TRUE(detail::ensure_apt_ready()); }
};

TEST_F(Changelog, EntriesNewerThanTheInstalledVersion) {
    const auto ids = changelog_ids_since(kChangelog, "3.0.20-1~deb12u2");
    EXPECT_EQ(ids.cves,
              (std::vector<std::string>{"CVE-2026-0001", "CVE-2026-0002", "CVE-2026-0003"}));
    EXPECT_EQ(ids.advisories, (std::vector<std::string>{"DSA-6001-1"}));
}

TEST_F(Changelog, TildeSortsBeforeTheRelease) {
    // 3.0.22-1~deb12u1 is older than 3.0.22-1: nothing in this changelog is newer.
    EXPECT_TRUE(changelog_ids_since(kChangelog, "3.0.22-1").cves.empty());
    const auto one = changelog_ids_since(kChangelog, "3.0.22-1~deb12u1");
    EXPECT_EQ(one.cves, (std::vector<std::string>{"CVE-2026-0002", "CVE-2026-0003"}));
}

TEST_F(Changelog, AMalformedHeaderEndsTheScan) {
    const auto ids = changelog_ids_since("garbage line CVE-2026-1111\n  * CVE-2026-2222\n", "1.0");
    EXPECT_TRUE(ids.cves.empty());
}

}  // namespace
}  // namespace pv::patcher::repo
