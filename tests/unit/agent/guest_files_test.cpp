// ReadFile's guest side over a directory standing in for the guest root:
// paths and symlinks stay inside it, only regular files and directories are
// read, and files come in bounded pieces.

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "agent/guest_files.hpp"
#include "tests/support/support.hpp"

namespace pv::agent {
namespace {

class GuestFiles : public ::testing::Test {
  protected:
    void SetUp() override {
        std::filesystem::create_directories(m_root.file("etc/apt/trusted.gpg.d"));
        std::filesystem::create_directories(m_root.file("usr/share/keyrings"));
        write("usr/share/keyrings/debian.gpg", "guest key");
        write("etc/apt/trusted.gpg.d/b.gpg", "b");
        // As in Debian: trusted.gpg.d entries link to /usr/share/keyrings.
        std::filesystem::create_symlink("/usr/share/keyrings/debian.gpg",
                                        m_root.file("etc/apt/trusted.gpg.d/a.asc"));
        std::filesystem::create_symlink("../../../../../../etc/passwd",
                                        m_root.file("etc/apt/trusted.gpg.d/escape.gpg"));
        ASSERT_EQ(::mkfifo(m_root.file("etc/apt/fifo").c_str(), 0600), 0);
    }
    void write(const std::string& name, const std::string& data) {
        std::ofstream(m_root.file(name), std::ios::binary) << data;
    }

    test::TempDir m_root;
};

TEST_F(GuestFiles, AbsoluteSymlinksResolveInsideTheGuest) {
    auto data = read_guest_path(m_root.path(), "/etc/apt/trusted.gpg.d/a.asc", 0);
    ASSERT_TRUE(data) << data.error().message();
    EXPECT_EQ(data->kind(), wire::FileData::KIND_FILE);
    EXPECT_EQ(data->data(), "guest key");
}

TEST_F(GuestFiles, DotDotStopsAtTheGuestRoot) {
    // ../ beyond the root stays at the root: the guest's /etc/passwd, which
    // this guest does not have, never the host's.
    auto data = read_guest_path(m_root.path(), "/etc/apt/trusted.gpg.d/escape.gpg", 0);
    ASSERT_TRUE(data) << data.error().message();
    EXPECT_EQ(data->kind(), wire::FileData::KIND_MISSING);
}

TEST_F(GuestFiles, DirectoriesAreListedSorted) {
    auto data = read_guest_path(m_root.path(), "/etc/apt/trusted.gpg.d", 0);
    ASSERT_TRUE(data) << data.error().message();
    EXPECT_EQ(data->kind(), wire::FileData::KIND_DIRECTORY);
    ASSERT_EQ(data->entries_size(), 3);
    EXPECT_EQ(data->entries(0), "a.asc");
    EXPECT_EQ(data->entries(1), "b.gpg");
    EXPECT_EQ(data->entries(2), "escape.gpg");
}

TEST_F(GuestFiles, FifosAndMissingPathsAreNotRead) {
    auto fifo = read_guest_path(m_root.path(), "/etc/apt/fifo", 0);
    ASSERT_TRUE(fifo) << fifo.error().message();
    EXPECT_EQ(fifo->kind(), wire::FileData::KIND_OTHER);
    auto missing = read_guest_path(m_root.path(), "/var/lib/dpkg/status", 0);
    ASSERT_TRUE(missing) << missing.error().message();
    EXPECT_EQ(missing->kind(), wire::FileData::KIND_MISSING);
    EXPECT_FALSE(read_guest_path(m_root.path(), "relative/path", 0));
}

TEST_F(GuestFiles, LargeFilesComeInPiecesFromTheOffset) {
    const std::string big(kMaxFilePiece + 1000, 'x');
    write("big", big + "end");
    auto first = read_guest_path(m_root.path(), "/big", 0);
    ASSERT_TRUE(first) << first.error().message();
    EXPECT_EQ(first->size(), big.size() + 3);
    EXPECT_EQ(first->data().size(), kMaxFilePiece);
    auto rest = read_guest_path(m_root.path(), "/big", kMaxFilePiece);
    ASSERT_TRUE(rest) << rest.error().message();
    EXPECT_EQ(rest->data(), std::string(1000, 'x') + "end");
    EXPECT_FALSE(read_guest_path(m_root.path(), "/big", big.size() + 4)) << "past the end";
}

}  // namespace
}  // namespace pv::agent
