// Damaged files opened through Qcow2Image: every problem is a clean error
// naming the file, never a crash or a wild read.

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "imgfmt/qcow2/endian.hpp"
#include "imgfmt/qcow2/qcow2_image.hpp"

namespace pv::img {
namespace {

constexpr uint64_t kCluster = 65536;

class Qcow2CorruptTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char name[] = "/tmp/pv-qcow2-corrupt-XXXXXX";
        ASSERT_NE(::mkdtemp(name), nullptr);
        m_dir = name;
        m_image = m_dir + "/image.qcow2";
        auto image = Qcow2Image::create_standalone(m_image, 8 << 20);
        ASSERT_TRUE(image.has_value()) << image.error().message();
        const std::vector<std::byte> data(3 * kCluster, std::byte{0x77});
        ASSERT_TRUE((*image)->write_at(data, 0).has_value());
        ASSERT_TRUE((*image)->flush().has_value());
    }
    void TearDown() override { std::filesystem::remove_all(m_dir); }

    uint64_t read_be64_at(uint64_t offset) {
        uint8_t bytes[8];
        const int fd = ::open(m_image.c_str(), O_RDONLY);
        EXPECT_EQ(::pread(fd, bytes, 8, static_cast<off_t>(offset)), 8);
        ::close(fd);
        return qcow2::load_be64(bytes);
    }
    void write_be64_at(uint64_t offset, uint64_t value) {
        uint8_t bytes[8];
        qcow2::store_be64(bytes, value);
        const int fd = ::open(m_image.c_str(), O_WRONLY);
        EXPECT_EQ(::pwrite(fd, bytes, 8, static_cast<off_t>(offset)), 8);
        ::close(fd);
    }
    void write_be32_at(uint64_t offset, uint32_t value) {
        uint8_t bytes[4];
        qcow2::store_be32(bytes, value);
        const int fd = ::open(m_image.c_str(), O_WRONLY);
        EXPECT_EQ(::pwrite(fd, bytes, 4, static_cast<off_t>(offset)), 4);
        ::close(fd);
    }
    std::string open_error(Access access = Access::ReadOnly) {
        auto image = Qcow2Image::open(m_image, access, Backing::Refuse);
        EXPECT_FALSE(image.has_value());
        return image ? std::string("(opened)") : image.error().message();
    }

    std::string m_dir;
    std::string m_image;
};

TEST_F(Qcow2CorruptTest, TruncatedFileCutsOffTheL1Table) {
    const uint64_t l1_offset = read_be64_at(40);
    std::filesystem::resize_file(m_image, l1_offset + 4);
    const std::string error = open_error();
    EXPECT_EQ(error, m_image + ": L1 table lies past the end of the file");
}

TEST_F(Qcow2CorruptTest, TruncatedToAFewBytes) {
    std::filesystem::resize_file(m_image, 50);
    EXPECT_EQ(open_error(), m_image + ": truncated qcow2 header");
}

TEST_F(Qcow2CorruptTest, UnknownIncompatibleBitIsRefused) {
    write_be64_at(72, 1ull << 40);
    EXPECT_NE(open_error().find("unknown incompatible feature bits 0x10000000000"),
              std::string::npos);
}

TEST_F(Qcow2CorruptTest, DirtyImageIsReadableButNotWritable) {
    write_be64_at(72, 1);  // the "dirty" bit: refcounts may be stale
    EXPECT_NE(open_error(Access::ReadWrite).find("dirty or corrupt"), std::string::npos);
    auto image = Qcow2Image::open(m_image, Access::ReadOnly, Backing::Refuse);
    ASSERT_TRUE(image.has_value()) << image.error().message();
    std::vector<std::byte> buffer(10);
    ASSERT_TRUE((*image)->read_at(buffer, 0).has_value());
    EXPECT_EQ(buffer[0], std::byte{0x77});
}

TEST_F(Qcow2CorruptTest, CorruptL1EntryIsAnError) {
    const uint64_t l1_offset = read_be64_at(40);
    write_be64_at(l1_offset, 12345);  // unaligned, reserved bits set
    EXPECT_NE(open_error().find("corrupt L1 table entry 0x3039"), std::string::npos);
}

TEST_F(Qcow2CorruptTest, CorruptL2EntryIsAnErrorOnRead) {
    const uint64_t l2_offset = read_be64_at(read_be64_at(40)) & 0x00fffffffffffe00ull;
    write_be64_at(l2_offset + 8, (1ull << 63) | (3 * kCluster + 512));
    auto image = Qcow2Image::open(m_image, Access::ReadOnly, Backing::Refuse);
    ASSERT_TRUE(image.has_value()) << image.error().message();
    std::vector<std::byte> buffer(2 * kCluster);
    auto read = (*image)->read_at(buffer, 0);
    ASSERT_FALSE(read.has_value());
    EXPECT_EQ(read.error().message().rfind(m_image + ": corrupt L2 table entry", 0), 0u)
        << read.error().message();
    EXPECT_FALSE((*image)->map(0, 2 * kCluster).has_value());
}

TEST_F(Qcow2CorruptTest, RefcountTableEntryPastEndIsAnErrorForWriting) {
    const uint64_t table = read_be64_at(48);
    write_be64_at(table, 1ull << 40);
    EXPECT_NE(open_error(Access::ReadWrite).find("corrupt refcount table entry"),
              std::string::npos);
}

TEST_F(Qcow2CorruptTest, L2TablePastEndOfFileIsAnError) {
    const uint64_t l1_offset = read_be64_at(40);
    write_be64_at(l1_offset, (1ull << 63) | (1ull << 40));
    auto image = Qcow2Image::open(m_image, Access::ReadOnly, Backing::Refuse);
    ASSERT_TRUE(image.has_value()) << image.error().message();
    std::vector<std::byte> buffer(512);
    auto read = (*image)->read_at(buffer, 0);
    ASSERT_FALSE(read.has_value());
    EXPECT_NE(read.error().message().find(m_image), std::string::npos);
}

TEST_F(Qcow2CorruptTest, AbsurdVirtualSizeIsRefused) {
    write_be64_at(24, 1ull << 61);
    EXPECT_NE(open_error().find("virtual size"), std::string::npos);
    write_be64_at(24, 1ull << 50);  // plausible, but the L1 table is too small
    EXPECT_NE(open_error().find("too small for the virtual size"), std::string::npos);
}

TEST_F(Qcow2CorruptTest, MisalignedRefcountTableIsRefused) {
    write_be64_at(48, read_be64_at(48) + 8);
    EXPECT_NE(open_error().find("refcount table offset is not cluster aligned"), std::string::npos);
}

TEST_F(Qcow2CorruptTest, EncryptedImageIsRefused) {
    write_be32_at(32, 2);  // crypt_method 2: LUKS
    EXPECT_EQ(open_error(), m_image + ": encrypted qcow2 images are not supported");
}

TEST_F(Qcow2CorruptTest, InternalSnapshotsAreNotWritable) {
    write_be32_at(60, 1);                 // nb_snapshots
    write_be64_at(64, read_be64_at(40));  // a snapshot table inside the file
    EXPECT_NE(open_error(Access::ReadWrite).find("internal snapshots"), std::string::npos);
}

}  // namespace
}  // namespace pv::img
