// open_image on hand-made qcow/qcow2 files: the qcow reader, read-only
// rules and the backing-file policy (CVE-2010-3851: never follow a name found
// inside an image unless allowed).

#include <gtest/gtest.h>

#include <algorithm>

#include "crafted_images.hpp"
#include "imgfmt/image.hpp"

namespace pv::img {
namespace {

using test::kCraftedSize;
using test::TempDir;
using test::write_file;

bool all_zero(const std::vector<std::byte>& bytes) {
    return std::all_of(bytes.begin(), bytes.end(), [](std::byte b) { return b == std::byte{0}; });
}

TEST(QcowImage, EmptyQcow2ReadsAsZeroesAndIsReadOnly) {
    TempDir dir;
    for (const uint32_t version : {2u, 3u}) {
        const std::string path = dir.file("empty" + std::to_string(version) + ".qcow2");
        write_file(path, test::make_qcow2(version));
        auto image = open_image(path, Access::ReadOnly, Backing::Refuse);
        ASSERT_TRUE(image) << image.error().message();
        EXPECT_EQ((*image)->size(), kCraftedSize);
        EXPECT_EQ((*image)->name(), path);
        EXPECT_TRUE((*image)->read_only());
        std::vector<std::byte> buffer(kCraftedSize, std::byte{0xff});
        ASSERT_TRUE((*image)->read_at(buffer, 0));
        EXPECT_TRUE(all_zero(buffer));
        EXPECT_FALSE((*image)->write_at(buffer, 0));
        EXPECT_FALSE((*image)->read_at(std::span(buffer.data(), 2), kCraftedSize - 1));
    }
}

TEST(QcowImage, EmptyQcowVersion1ReadsAsZeroes) {
    TempDir dir;
    write_file(dir.file("v1.qcow"), test::make_qcow1());
    auto image = open_image(dir.file("v1.qcow"), Access::ReadOnly, Backing::Refuse);
    ASSERT_TRUE(image) << image.error().message();
    EXPECT_EQ((*image)->size(), kCraftedSize);
    std::vector<std::byte> buffer(4096, std::byte{0xff});
    ASSERT_TRUE((*image)->read_at(buffer, kCraftedSize - 4096));
    EXPECT_TRUE(all_zero(buffer));
}

// The error open_image gives for PATH ("" if it opened).
std::string open_error(const std::string& path) {
    auto image = open_image(path, Access::ReadOnly, Backing::Refuse);
    return image ? "" : image.error().message();
}

TEST(QcowImage, L2TablePastTheEndOfTheFileIsRefusedAtOpen) {
    // A hostile L1 entry: every table entry is checked at open, before
    // libqcow could see it; the error names the file and the entry.
    TempDir dir;
    auto bytes = test::make_qcow2(3);
    test::store_be(bytes, 65536, (uint64_t{1} << 40) | (uint64_t{1} << 63), 8);
    write_file(dir.file("wild.qcow2"), bytes);
    const std::string error = open_error(dir.file("wild.qcow2"));
    EXPECT_NE(error.find(dir.file("wild.qcow2")), std::string::npos) << error;
    EXPECT_NE(error.find("L2 table of L1 entry 0"), std::string::npos) << error;
    EXPECT_NE(error.find("past the end of the file"), std::string::npos) << error;
}

TEST(QcowImage, L1EntryWithReservedBitsIsRefusedAtOpen) {
    // libqcow would keep bits 56-61 as part of the L2 offset, we (and QEMU)
    // drop them: the two would read different tables.
    TempDir dir;
    auto bytes = test::make_qcow2(3);
    test::store_be(bytes, 65536, (uint64_t{1} << 56) | (uint64_t{1} << 63), 8);
    write_file(dir.file("reserved.qcow2"), bytes);
    const std::string error = open_error(dir.file("reserved.qcow2"));
    EXPECT_NE(error.find("L1 entry 0 has reserved bits set"), std::string::npos) << error;
}

TEST(QcowImage, UnalignedL2TableIsRefusedAtOpen) {
    // libqcow reads L2 tables in table-sized slots: one starting mid-slot
    // would be read from the start of its slot.
    TempDir dir;
    auto bytes = test::make_qcow2(3);
    bytes.resize(6 * 65536, 0);
    test::store_be(bytes, 65536, (4 * 65536 + 512) | (uint64_t{1} << 63), 8);
    write_file(dir.file("unaligned-l2.qcow2"), bytes);
    const std::string error = open_error(dir.file("unaligned-l2.qcow2"));
    EXPECT_NE(error.find("L1 entry 0: L2 table at offset 262656 is not aligned"), std::string::npos)
        << error;
}

// make_qcow2 with an L2 table in cluster 4 whose first entry is ENTRY and a
// cluster 5 of 0xff bytes: for damaging one L2 entry at a time.
std::vector<uint8_t> qcow2_with_first_l2_entry(uint64_t entry) {
    constexpr uint64_t kCluster = 65536;
    auto bytes = test::make_qcow2(3);
    bytes.resize(6 * kCluster, 0);
    std::fill(bytes.begin() + 5 * kCluster, bytes.end(), 0xff);
    test::store_be(bytes, kCluster, (4 * kCluster) | (uint64_t{1} << 63), 8);
    test::store_be(bytes, 4 * kCluster, entry, 8);
    return bytes;
}

// Reads the first sector of PATH and returns the error message ("" if the
// read worked).
std::string first_read_error(const std::string& path) {
    auto image = open_image(path, Access::ReadOnly, Backing::Refuse);
    EXPECT_TRUE(image) << image.error().message();
    if (!image)
        return "open failed";
    std::vector<std::byte> buffer(512);
    auto read = (*image)->read_at(buffer, 0);
    return read ? "" : read.error().message();
}

TEST(QcowImage, UnalignedDataClusterIsRefusedAtOpen) {
    // QEMU calls a data cluster that is not cluster-aligned corruption.
    TempDir dir;
    write_file(dir.file("unaligned.qcow2"),
               qcow2_with_first_l2_entry((5 * 65536 + 512) | (uint64_t{1} << 63)));
    const std::string error = open_error(dir.file("unaligned.qcow2"));
    EXPECT_NE(error.find("entry 0 of the L2 table of L1 entry 0"), std::string::npos) << error;
    EXPECT_NE(error.find("not aligned"), std::string::npos) << error;
}

TEST(QcowImage, DataClusterCutByTheEndOfTheFileIsRefusedAtOpen) {
    TempDir dir;
    auto bytes = qcow2_with_first_l2_entry((5 * 65536) | (uint64_t{1} << 63));
    bytes.resize(5 * 65536 + 1000);
    write_file(dir.file("cut.qcow2"), bytes);
    EXPECT_NE(open_error(dir.file("cut.qcow2")).find("past the end of the file"),
              std::string::npos);
}

TEST(QcowImage, CompressedClusterThatDoesNotInflateIsAReadError) {
    // Bit 62 marks a compressed cluster; one sector of 0xff is no deflate
    // stream: the tables are sound, the cluster's read fails.
    TempDir dir;
    write_file(dir.file("garbage.qcow2"),
               qcow2_with_first_l2_entry((5 * 65536) | (uint64_t{1} << 62)));
    const std::string error = first_read_error(dir.file("garbage.qcow2"));
    EXPECT_NE(error.find(dir.file("garbage.qcow2")), std::string::npos) << error;
    EXPECT_NE(error.find("does not inflate to a whole cluster"), std::string::npos) << error;
}

TEST(QcowImage, CompressedClusterWhoseStreamEndsEarlyIsAReadError) {
    // Ten 'A's, raw deflate (zlib.compressobj(9, DEFLATED, -12)): a sound
    // stream that ends 65526 bytes short of the cluster. QEMU fails the
    // read; libqcow 20201213 would return the rest of its buffer
    // uninitialized, so the reader must refuse it before libqcow sees it.
    TempDir dir;
    auto bytes = qcow2_with_first_l2_entry((5 * 65536) | (uint64_t{1} << 62));
    const uint8_t stream[] = {115, 116, 132, 1, 0};
    std::fill(bytes.begin() + 5 * 65536, bytes.end(), 0);
    std::copy(std::begin(stream), std::end(stream), bytes.begin() + 5 * 65536);
    write_file(dir.file("short.qcow2"), bytes);
    const std::string error = first_read_error(dir.file("short.qcow2"));
    EXPECT_NE(error.find("does not inflate to a whole cluster"), std::string::npos) << error;
}

TEST(QcowImage, CompressedClusterPastTheEndOfTheFileIsRefusedAtOpen) {
    TempDir dir;
    write_file(dir.file("far.qcow2"),
               qcow2_with_first_l2_entry((uint64_t{1} << 40) | (uint64_t{1} << 62)));
    EXPECT_NE(open_error(dir.file("far.qcow2")).find("past the end of the file"),
              std::string::npos);
}

TEST(QcowImage, QcowVersion1CompressedDataPastTheEndOfTheFileIsRefusedAtOpen) {
    // Version 1 entries give the compressed size in bytes (bits 51-62 for
    // 4 KiB clusters) and libqcow reads exactly that many: 200 bytes at
    // 12288 in a file that ends at 12388 cannot be read.
    TempDir dir;
    auto bytes = test::make_qcow1();
    bytes.resize(3 * 4096 + 100, 0);
    test::store_be(bytes, 4096, 2 * 4096, 8);  // L1[0]: L2 table at 8192
    test::store_be(bytes, 2 * 4096, (uint64_t{1} << 63) | (uint64_t{200} << 51) | (3 * 4096), 8);
    write_file(dir.file("cut.qcow"), bytes);
    const std::string error = open_error(dir.file("cut.qcow"));
    EXPECT_NE(error.find("entry 0 of the L2 table of L1 entry 0"), std::string::npos) << error;
    EXPECT_NE(error.find("runs past the end of the file"), std::string::npos) << error;
}

TEST(QcowImage, CompressedClusterAtOffsetZeroIsRefusedAtOpen) {
    // With no size bits either, libqcow would take it for unallocated.
    TempDir dir;
    write_file(dir.file("zero.qcow2"), qcow2_with_first_l2_entry(uint64_t{1} << 62));
    EXPECT_NE(open_error(dir.file("zero.qcow2")).find("overlaps the header"), std::string::npos);
}

TEST(QcowImage, MapOfAnEmptyImageIsOneZeroExtent) {
    TempDir dir;
    write_file(dir.file("empty.qcow2"), test::make_qcow2(3));
    auto image = open_image(dir.file("empty.qcow2"), Access::ReadOnly, Backing::Refuse);
    ASSERT_TRUE(image);
    auto extents = (*image)->map(0, kCraftedSize);
    ASSERT_TRUE(extents) << extents.error().message();
    ASSERT_EQ(extents->size(), 1u);
    EXPECT_EQ((*extents)[0].kind, ExtentKind::Zero);
    EXPECT_EQ((*extents)[0].length, kCraftedSize);
}

TEST(QcowImage, MapFollowsTheBackingFile) {
    // Unallocated clusters take the backing file's view: its data is Data,
    // and past its end (it is shorter) everything is Zero.
    TempDir dir;
    write_file(dir.file("base.raw"), std::vector<uint8_t>(256 * 1024, 0x5a));
    write_file(dir.file("top.qcow2"), test::make_qcow2(3, "base.raw"));
    auto image = open_image(dir.file("top.qcow2"), Access::ReadOnly, Backing::Allow);
    ASSERT_TRUE(image) << image.error().message();
    auto extents = (*image)->map(4096, kCraftedSize - 4096);
    ASSERT_TRUE(extents) << extents.error().message();
    ASSERT_EQ(extents->size(), 2u);
    EXPECT_EQ((*extents)[0].kind, ExtentKind::Data);
    EXPECT_EQ((*extents)[0].offset, 4096u);
    EXPECT_EQ((*extents)[0].length, 256u * 1024 - 4096);
    EXPECT_EQ((*extents)[1].kind, ExtentKind::Zero);
    EXPECT_EQ((*extents)[1].offset + (*extents)[1].length, kCraftedSize);
}

TEST(QcowImage, ReadWriteAccessIsRefused) {
    TempDir dir;
    write_file(dir.file("v3.qcow2"), test::make_qcow2(3));
    auto image = open_image(dir.file("v3.qcow2"), Access::ReadWrite, Backing::Refuse);
    ASSERT_FALSE(image);
    EXPECT_NE(image.error().message().find("read-only"), std::string::npos);
}

TEST(QcowImage, BackingFileIsRefusedByDefault) {
    TempDir dir;
    write_file(dir.file("base.qcow2"), test::make_qcow2(3));
    write_file(dir.file("top.qcow2"), test::make_qcow2(3, "base.qcow2"));
    auto image = open_image(dir.file("top.qcow2"), Access::ReadOnly, Backing::Refuse);
    ASSERT_FALSE(image);
    EXPECT_EQ(image.error().message(),
              dir.file("top.qcow2") +
                  ": has a backing file (base.qcow2); pass --allow-backing to follow it");
}

TEST(QcowImage, AllowedBackingFileIsResolvedNextToTheImage) {
    // The top holds nothing, so every byte comes from the raw base named by
    // a relative path: a read of 0x5a proves the base was found and read.
    TempDir dir;
    write_file(dir.file("base.raw"), std::vector<uint8_t>(kCraftedSize, 0x5a));
    write_file(dir.file("top.qcow2"), test::make_qcow2(3, "base.raw"));
    auto image = open_image(dir.file("top.qcow2"), Access::ReadOnly, Backing::Allow);
    ASSERT_TRUE(image) << image.error().message();
    std::vector<std::byte> buffer(8192);
    ASSERT_TRUE((*image)->read_at(buffer, 4096));
    EXPECT_TRUE(std::all_of(buffer.begin(), buffer.end(),
                            [](std::byte b) { return b == std::byte{0x5a}; }));
}

TEST(QcowImage, ShorterBackingFileReadsAsZeroesPastItsEnd) {
    TempDir dir;
    write_file(dir.file("base.raw"), std::vector<uint8_t>(4096, 0x5a));
    write_file(dir.file("top.qcow2"), test::make_qcow2(3, "base.raw"));
    auto image = open_image(dir.file("top.qcow2"), Access::ReadOnly, Backing::Allow);
    ASSERT_TRUE(image) << image.error().message();
    std::vector<std::byte> buffer(8192, std::byte{1});
    ASSERT_TRUE((*image)->read_at(buffer, 0));
    EXPECT_EQ(buffer[4095], std::byte{0x5a});
    EXPECT_EQ(buffer[4096], std::byte{0});
    EXPECT_EQ(buffer[8191], std::byte{0});
}

TEST(QcowImage, MissingBackingFileNamesBothFiles) {
    TempDir dir;
    write_file(dir.file("top.qcow2"), test::make_qcow2(3, "gone.qcow2"));
    auto image = open_image(dir.file("top.qcow2"), Access::ReadOnly, Backing::Allow);
    ASSERT_FALSE(image);
    EXPECT_NE(image.error().message().find(dir.file("top.qcow2")), std::string::npos);
    EXPECT_NE(image.error().message().find(dir.file("gone.qcow2")), std::string::npos);
}

TEST(QcowImage, BackingLoopStopsAtTheDepthLimit) {
    TempDir dir;
    write_file(dir.file("self.qcow2"), test::make_qcow2(3, "self.qcow2"));
    auto image = open_image(dir.file("self.qcow2"), Access::ReadOnly, Backing::Allow);
    ASSERT_FALSE(image);
    EXPECT_NE(image.error().message().find("deeper than " + std::to_string(kMaxBackingDepth)),
              std::string::npos)
        << image.error().message();
}

TEST(QcowImage, QcowVersion1WithBackingFileIsRefusedWhenAllowed) {
    TempDir dir;
    write_file(dir.file("base.qcow"), test::make_qcow1());
    write_file(dir.file("top.qcow"), test::make_qcow1("base.qcow"));
    auto image = open_image(dir.file("top.qcow"), Access::ReadOnly, Backing::Allow);
    ASSERT_FALSE(image);
    EXPECT_NE(image.error().message().find("not supported"), std::string::npos);
}

}  // namespace
}  // namespace pv::img
