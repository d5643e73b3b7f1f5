// What the resolver takes from the guest, through a fake GuestFiles: the
// dpkg status and architectures, preferences, and only real keyrings (not
// Debian's retired keys, not stray files).

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>

#include "patcher/repo/guest_state.hpp"
#include "tests/support/support.hpp"

namespace pv::patcher::repo {
namespace {

// A guest as a map from path to content; a directory lists the paths below it.
class FakeGuestFiles final : public GuestFiles {
  public:
    std::map<std::string, std::string> files;

    Result<std::optional<std::string>> read(const std::string& path, uint64_t limit) override {
        auto found = files.find(path);
        if (found == files.end())
            return std::optional<std::string>();
        if (found->second.size() > limit)
            return fail(make_error("read " + path, "over the limit"));
        return std::optional<std::string>(found->second);
    }
    Result<std::vector<std::string>> list(const std::string& path) override {
        std::vector<std::string> names;
        for (const auto& [name, content] : files)
            if (name.starts_with(path + "/") &&
                name.find('/', path.size() + 1) == std::string::npos)
                names.push_back(name.substr(path.size() + 1));
        return names;
    }
};

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

class GuestState : public ::testing::Test {
  protected:
    void SetUp() override {
        const std::string binary_key = "\x99\x01\x0d key";
        m_guest.files = {
            {"/var/lib/dpkg/status", "Package: dpkg\nStatus: install ok installed\n"},
            {"/var/lib/dpkg/arch", "amd64\ni386\n"},
            {"/etc/apt/preferences.d/pin.pref", "Package: x\nPin: version 1\nPin-Priority: -1\n"},
            {"/etc/apt/trusted.gpg.d/debian-archive-bookworm-security.asc",
             "-----BEGIN PGP PUBLIC KEY BLOCK-----\n...\n"},
            {"/usr/share/keyrings/debian-archive-keyring.gpg", binary_key},
            {"/usr/share/keyrings/debian-archive-removed-keys.gpg", binary_key},
            {"/usr/share/keyrings/README.gpg", "not a key"},
        };
        auto workspace = AptWorkspace::create(m_dir.file("work"));
        ASSERT_TRUE(workspace) << workspace.error().message();
        m_workspace.emplace(std::move(*workspace));
    }
    Result<GuestAptState> copy(const std::optional<std::string>& keyring = std::nullopt) {
        const GuestView view{PackageFamily::deb, m_installed, m_os_release, m_guest};
        return copy_guest_state(view, keyring, *m_workspace);
    }

    test::TempDir m_dir;
    FakeGuestFiles m_guest;
    std::vector<InstalledPackage> m_installed{{"dpkg", "1.21.22", "amd64"}};
    std::map<std::string, std::string> m_os_release{{"VERSION_CODENAME", "bookworm"}};
    std::optional<AptWorkspace> m_workspace;
};

TEST_F(GuestState, CopiesStatusPinsAndRealKeyringsOnly) {
    auto state = copy();
    ASSERT_TRUE(state) << state.error().message();
    EXPECT_EQ(state->settings.native_architecture, "amd64");
    EXPECT_EQ(state->settings.foreign_architectures, std::vector<std::string>{"i386"});
    EXPECT_EQ(state->preference_files, 1u);
    EXPECT_EQ(slurp(m_workspace->status_file()), m_guest.files["/var/lib/dpkg/status"]);
    EXPECT_EQ(slurp(m_workspace->preference_parts() + "/pin.pref"),
              m_guest.files["/etc/apt/preferences.d/pin.pref"]);
    EXPECT_EQ(state->keyrings, (std::vector<std::string>{
                                   "/etc/apt/trusted.gpg.d/debian-archive-bookworm-security.asc",
                                   "/usr/share/keyrings/debian-archive-keyring.gpg"}));
    std::vector<std::string> copied;
    for (const auto& entry : std::filesystem::directory_iterator(m_workspace->trusted_parts()))
        copied.push_back(entry.path().filename().string());
    std::sort(copied.begin(), copied.end());
    EXPECT_EQ(copied, (std::vector<std::string>{"etc-debian-archive-bookworm-security.asc",
                                                "share-debian-archive-keyring.gpg"}));
    ASSERT_EQ(state->skipped.size(), 2u);
}

TEST_F(GuestState, AGivenKeyringReplacesTheGuests) {
    const auto keyring = m_dir.file("test-key.gpg");
    std::ofstream(keyring, std::ios::binary) << "\x99\x01\x0d test key";
    auto state = copy(keyring);
    ASSERT_TRUE(state) << state.error().message();
    EXPECT_EQ(state->keyrings, std::vector<std::string>{keyring});
    EXPECT_EQ(slurp(m_workspace->trusted_parts() + "/keyring.gpg"), "\x99\x01\x0d test key");
    EXPECT_FALSE(std::filesystem::exists(m_workspace->trusted_parts() +
                                         "/share-debian-archive-keyring.gpg"));
    const auto text = m_dir.file("notes.txt");
    std::ofstream(text) << "hello";
    EXPECT_FALSE(copy(text)) << "a keyring must look like one";
}

TEST_F(GuestState, WithoutStatusOrDpkgItIsAnError) {
    m_guest.files.erase("/var/lib/dpkg/status");
    auto state = copy();
    ASSERT_FALSE(state);
    EXPECT_NE(state.error().message().find("/var/lib/dpkg/status"), std::string::npos);
    m_installed.clear();
    EXPECT_FALSE(copy());
}

}  // namespace
}  // namespace pv::patcher::repo
