// A repository that cannot be trusted is refused before anything is
// staged: the job fails, the original image stays byte-identical, and
// nothing of the job is left behind (expect_failed_cleanly).

#include <algorithm>
#include <ostream>

#include <gtest/gtest.h>

#include "tests/e2e/repo/repo_test_support.hpp"

namespace pv::test {
namespace {

struct BadRepository {
    const char* repository;
    const char* message;  // apt's words, or ours for the .deb check
};

// Names the case in ctest's listing instead of its bytes.
void PrintTo(const BadRepository& bad, std::ostream* out) {
    *out << bad.repository;
}

class RepoFailure : public ::testing::TestWithParam<BadRepository> {};

TEST_P(RepoFailure, FailsWithTheOriginalByteIdentical) {
    const RepoFixture fixture;
    const TempDir dir;
    const auto image = fixture.copy_image("sample-fixture.raw", dir.file("vm.raw"));
    const auto sha = sha256_of_file(image);
    const auto result = patch_job(image, "", dir.file("work"),
                                  "--repo " + quote(fixture.path(GetParam().repository)));
    expect_failed_cleanly(result, GetParam().message, image, sha);
    EXPECT_EQ(installed_version(image, "pv-fixture-tool"), "1.0");
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, RepoFailure,
    ::testing::Values(
        // InRelease altered after signing, no Release.gpg to fall back to.
        BadRepository{"repo-badsig", "The following signatures were invalid: BADSIG"},
        // Signed by a key in no keyring of the guest.
        BadRepository{"repo-otherkey", "NO_PUBKEY"},
        BadRepository{"repo-unsigned", "is not signed"},
        BadRepository{"repo-expired", "is expired"},
        // A Packages file that is not the one the signed Release names.
        BadRepository{"repo-badhash", "Hash Sum mismatch"},
        // A .deb that is not the one the signed Packages names.
        BadRepository{"repo-baddeb", "do not match the signed Packages entry"}),
    [](const auto& info) {
        std::string name = info.param.repository;
        name.erase(std::remove(name.begin(), name.end(), '-'), name.end());
        return name;
    });

TEST(RepoFailureKeyring, GuestWithoutTheKeyIsRefused) {
    // The plain sample trusts only Debian's keys, not the fixtures' test key.
    const RepoFixture fixture;
    const TempDir dir;
    const auto image = copy_sample(dir, "sample-raw", "vm.raw");
    const auto sha = sha256_of_file(image);
    const auto result =
        patch_job(image, "", dir.file("work"), "--repo " + quote(fixture.path("repo-good")));
    expect_failed_cleanly(result, "NO_PUBKEY", image, sha);
}

TEST(RepoFailureKeyring, WrongKeyringFileIsRefused) {
    const RepoFixture fixture;
    const TempDir dir;
    const auto image = fixture.copy_image("sample-fixture.raw", dir.file("vm.raw"));
    const auto sha = sha256_of_file(image);
    // --keyring replaces the guest's keyrings: its test key no longer counts.
    const auto result = patch_job(image, "", dir.file("work"),
                                  "--repo " + quote(fixture.path("repo-good")) + " --keyring " +
                                      quote(fixture.path("keys/other-key.gpg")));
    expect_failed_cleanly(result, "NO_PUBKEY", image, sha);
}

}  // namespace
}  // namespace pv::test
