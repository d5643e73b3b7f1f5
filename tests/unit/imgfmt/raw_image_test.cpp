// RawImage over sparse files: byte-exact I/O, range checks, and the hole map
// that commit relies on to keep holes holes.

#include "imgfmt/raw/raw_image.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

#include "crafted_images.hpp"

namespace pv::img {
namespace {

using test::TempDir;

constexpr uint64_t kMiB = 1 << 20;

// A sparse file of SIZE bytes with nothing written.
std::string sparse_file(const TempDir& dir, uint64_t size) {
    const std::string path = dir.file("disk.raw");
    const int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
    ::close(fd);
    return path;
}

std::vector<std::byte> pattern(size_t length, uint8_t value) {
    return std::vector<std::byte>(length, std::byte{value});
}

std::unique_ptr<RawImage> open_raw(const std::string& path, Access access) {
    auto image = RawImage::open(path, access);
    EXPECT_TRUE(image) << image.error().message();
    return image ? std::move(*image) : nullptr;
}

TEST(RawImage, WritesAndReadsBackExactBytes) {
    TempDir dir;
    auto image = open_raw(sparse_file(dir, 4 * kMiB), Access::ReadWrite);
    ASSERT_TRUE(image);
    EXPECT_EQ(image->size(), 4 * kMiB);
    EXPECT_FALSE(image->read_only());
    const auto data = pattern(5000, 0x5a);
    ASSERT_TRUE(image->write_at(data, kMiB + 3));
    ASSERT_TRUE(image->flush());
    std::vector<std::byte> back(5002);
    ASSERT_TRUE(image->read_at(back, kMiB + 2));
    EXPECT_EQ(back.front(), std::byte{0});
    EXPECT_EQ(back.back(), std::byte{0});
    EXPECT_TRUE(std::equal(data.begin(), data.end(), back.begin() + 1));
}

TEST(RawImage, ReadOnlyImageRefusesEveryWrite) {
    TempDir dir;
    auto image = open_raw(sparse_file(dir, kMiB), Access::ReadOnly);
    ASSERT_TRUE(image);
    EXPECT_TRUE(image->read_only());
    const auto data = pattern(512, 1);
    EXPECT_FALSE(image->write_at(data, 0));
    EXPECT_FALSE(image->write_zeroes(0, 512));
    EXPECT_FALSE(image->discard(0, 512));
}

TEST(RawImage, RangesPastTheEndAreErrorsNamingTheFile) {
    TempDir dir;
    const std::string path = sparse_file(dir, kMiB);
    auto image = open_raw(path, Access::ReadWrite);
    ASSERT_TRUE(image);
    std::vector<std::byte> buffer(20);
    auto read = image->read_at(buffer, kMiB - 10);
    ASSERT_FALSE(read);
    EXPECT_NE(read.error().message().find(path), std::string::npos);
    EXPECT_NE(read.error().message().find("past the end"), std::string::npos);
    // An offset so large that offset + length wraps around must not pass.
    EXPECT_FALSE(image->read_at(buffer, UINT64_MAX - 5));
    EXPECT_FALSE(image->write_at(buffer, kMiB - 19));
    EXPECT_FALSE(image->map(kMiB, 1));
    EXPECT_TRUE(image->read_at(std::span(buffer.data(), 10), kMiB - 10));
}

TEST(RawImage, MapMergesDataAndReportsHolesAsZero) {
    TempDir dir;
    auto image = open_raw(sparse_file(dir, 4 * kMiB), Access::ReadWrite);
    ASSERT_TRUE(image);
    const auto data = pattern(64 * 1024, 0xaa);
    ASSERT_TRUE(image->write_at(data, kMiB));
    ASSERT_TRUE(image->write_at(data, kMiB + 64 * 1024));
    auto extents = image->map(0, image->size());
    ASSERT_TRUE(extents) << extents.error().message();
    ASSERT_EQ(extents->size(), 3u);
    EXPECT_EQ((*extents)[0].kind, ExtentKind::Zero);
    EXPECT_EQ((*extents)[0].offset, 0u);
    EXPECT_EQ((*extents)[0].length, kMiB);
    EXPECT_EQ((*extents)[1].kind, ExtentKind::Data);
    EXPECT_EQ((*extents)[1].offset, kMiB);
    EXPECT_EQ((*extents)[1].length, 128u * 1024);
    EXPECT_EQ((*extents)[2].kind, ExtentKind::Zero);
    EXPECT_EQ((*extents)[2].offset + (*extents)[2].length, 4 * kMiB);
}

TEST(RawImage, MapOfASubRangeIsClippedToIt) {
    TempDir dir;
    auto image = open_raw(sparse_file(dir, 4 * kMiB), Access::ReadWrite);
    ASSERT_TRUE(image);
    ASSERT_TRUE(image->write_at(pattern(64 * 1024, 1), kMiB));
    auto inside = image->map(kMiB + 4096, 8192);
    ASSERT_TRUE(inside);
    ASSERT_EQ(inside->size(), 1u);
    EXPECT_EQ((*inside)[0].kind, ExtentKind::Data);
    EXPECT_EQ((*inside)[0].offset, kMiB + 4096);
    EXPECT_EQ((*inside)[0].length, 8192u);
    auto across = image->map(kMiB - 4096, 8192);
    ASSERT_TRUE(across);
    ASSERT_EQ(across->size(), 2u);
    EXPECT_EQ((*across)[0].kind, ExtentKind::Zero);
    EXPECT_EQ((*across)[0].length, 4096u);
    EXPECT_EQ((*across)[1].kind, ExtentKind::Data);
    EXPECT_EQ((*across)[1].length, 4096u);
    auto empty = image->map(kMiB, 0);
    ASSERT_TRUE(empty);
    EXPECT_TRUE(empty->empty());
}

TEST(RawImage, WriteZeroesReadsAsZeroesAndLeavesAHole) {
    TempDir dir;
    auto image = open_raw(sparse_file(dir, 2 * kMiB), Access::ReadWrite);
    ASSERT_TRUE(image);
    ASSERT_TRUE(image->write_at(pattern(256 * 1024, 0x77), 0));
    ASSERT_TRUE(image->write_zeroes(64 * 1024, 64 * 1024));
    std::vector<std::byte> back(256 * 1024);
    ASSERT_TRUE(image->read_at(back, 0));
    for (size_t i = 0; i < back.size(); ++i) {
        const bool zeroed = i >= 64 * 1024 && i < 128 * 1024;
        ASSERT_EQ(back[i], zeroed ? std::byte{0} : std::byte{0x77}) << "at byte " << i;
    }
    auto extents = image->map(0, 256 * 1024);
    ASSERT_TRUE(extents);
    ASSERT_EQ(extents->size(), 3u);
    EXPECT_EQ((*extents)[1].kind, ExtentKind::Zero);
    EXPECT_EQ((*extents)[1].offset, 64u * 1024);
    EXPECT_EQ(image->size(), 2 * kMiB);
}

TEST(RawImage, DiscardKeepsTheSize) {
    TempDir dir;
    const std::string path = sparse_file(dir, 2 * kMiB);
    auto image = open_raw(path, Access::ReadWrite);
    ASSERT_TRUE(image);
    ASSERT_TRUE(image->write_at(pattern(kMiB, 3), kMiB));
    ASSERT_TRUE(image->discard(kMiB, kMiB));
    auto reopened = open_raw(path, Access::ReadOnly);
    ASSERT_TRUE(reopened);
    EXPECT_EQ(reopened->size(), 2 * kMiB);
}

}  // namespace
}  // namespace pv::img
