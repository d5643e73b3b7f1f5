// Partition tables and filesystem signatures from raw bytes, including
// tables that point outside the disk or the bytes read.

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "imgfmt/partition/partition_table.hpp"

namespace pv::img {
namespace {

constexpr uint64_t kDisk = 64ull << 20;

void put_le(std::string& bytes, size_t offset, uint64_t value, size_t width) {
    for (size_t i = 0; i < width; ++i)
        bytes[offset + i] = static_cast<char>(value >> (8 * i));
}

std::string mbr(std::initializer_list<std::tuple<uint8_t, uint32_t, uint32_t>> entries) {
    std::string head(kPartitionTableBytes, '\0');
    size_t i = 0;
    for (auto [type, start, count] : entries) {
        head[446 + i * 16 + 4] = static_cast<char>(type);
        put_le(head, 446 + i * 16 + 8, start, 4);
        put_le(head, 446 + i * 16 + 12, count, 4);
        ++i;
    }
    head[510] = '\x55';
    head[511] = '\xaa';
    return head;
}

void add_gpt(std::string& head, std::initializer_list<std::pair<uint64_t, uint64_t>> ranges,
             uint32_t entry_count = 128) {
    std::memcpy(&head[512], "EFI PART", 8);
    put_le(head, 512 + 72, 2, 8);
    put_le(head, 512 + 80, entry_count, 4);
    put_le(head, 512 + 84, 128, 4);
    size_t i = 0;
    for (auto [first, last] : ranges) {
        const size_t entry = 1024 + i * 128;
        head[entry] = 1;  // any non-zero type GUID
        put_le(head, entry + 32, first, 8);
        put_le(head, entry + 40, last, 8);
        ++i;
    }
}

TEST(Partitions, ReadsMbrPrimaryPartitions) {
    const auto parts = parse_partition_table(
        mbr({{0x83, 2048, 4096}, {0x05, 8192, 100}, {0x00, 0, 0}, {0x83, 10000, 100}}), 512, kDisk);
    ASSERT_EQ(parts.size(), 2u);
    EXPECT_EQ(parts[0].number, 1u);
    EXPECT_EQ(parts[0].offset, 2048u * 512);
    EXPECT_EQ(parts[0].size, 4096u * 512);
    EXPECT_EQ(parts[1].number, 4u);
}

TEST(Partitions, ReadsGptBehindProtectiveMbr) {
    std::string head = mbr({{0xee, 1, 0xffffffff}});
    add_gpt(head, {{2048, 4095}, {0, 0}, {4096, 8191}});
    const auto parts = parse_partition_table(head, 512, kDisk);
    ASSERT_EQ(parts.size(), 2u);
    EXPECT_EQ(parts[0].number, 1u);
    EXPECT_EQ(parts[0].offset, 1048576u);
    EXPECT_EQ(parts[0].size, 2048u * 512);
    EXPECT_EQ(parts[1].number, 3u);
}

TEST(Partitions, DropsEntriesOutsideTheDiskOrTheBytesRead) {
    std::string head = mbr({{0xee, 1, 0xffffffff}});
    // Past the disk end, reversed, overflowing, valid, and valid but beyond
    // the bytes read.
    add_gpt(
        head,
        {{2048, kDisk}, {5000, 4000}, {UINT64_MAX - 1, UINT64_MAX}, {2048, 2048}, {4096, 8191}});
    const auto parts = parse_partition_table(head.substr(0, 1024 + 4 * 128), 512, kDisk);
    ASSERT_EQ(parts.size(), 1u);
    EXPECT_EQ(parts[0].number, 4u);
    // An absurd entry count is refused as a whole.
    add_gpt(head, {{2048, 4095}}, 100000);
    EXPECT_TRUE(parse_partition_table(head, 512, kDisk).empty());
    EXPECT_TRUE(parse_partition_table(mbr({{0x83, 0xffffff00, 0xff}}), 512, kDisk).empty());
    EXPECT_TRUE(parse_partition_table(std::string(100, '\0'), 512, kDisk).empty());
    EXPECT_TRUE(parse_partition_table(mbr({{0x83, 1, 1}}), 1000, kDisk).empty());
}

TEST(Partitions, RandomBytesNeverCrash) {
    std::mt19937 random(99);
    for (int round = 0; round < 200; ++round) {
        std::string head(4096 + random() % 8192, '\0');
        for (auto& c : head)
            c = static_cast<char>(random());
        head[510] = '\x55';
        head[511] = '\xaa';
        if (round % 2 == 0) {
            head[446 + 4] = '\xee';
            std::memcpy(&head[512], "EFI PART", 8);
        }
        for (const auto& part : parse_partition_table(head, 512, kDisk))
            EXPECT_LE(part.offset + part.size, kDisk);
    }
}

TEST(Filesystems, DetectsSignatures) {
    std::string head(kFilesystemProbeBytes, '\0');
    EXPECT_EQ(detect_filesystem(head), "");
    head[1024 + 56] = '\x53';
    head[1024 + 57] = '\xef';
    EXPECT_EQ(detect_filesystem(head), "ext4");
    std::string xfs(kFilesystemProbeBytes, '\0');
    std::memcpy(xfs.data(), "XFSB", 4);
    EXPECT_EQ(detect_filesystem(xfs), "xfs");
    std::string btrfs(kFilesystemProbeBytes, '\0');
    std::memcpy(&btrfs[65536 + 64], "_BHRfS_M", 8);
    EXPECT_EQ(detect_filesystem(btrfs), "btrfs");
    EXPECT_EQ(detect_filesystem(btrfs.substr(0, 65536 + 66)), "");
}

}  // namespace
}  // namespace pv::img
