// Qcow2Image over an in-memory backing device: reads fall through, writes
// copy on write, zero clusters, map() and reopening, checked against a
// byte model of the disk.

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "imgfmt/qcow2/endian.hpp"
#include "imgfmt/qcow2/qcow2_image.hpp"

namespace pv::img {
namespace {

constexpr uint64_t kCluster = 65536;

// The backing device of the tests: bytes in memory, counting reads.
class FakeBacking final : public BlockDevice {
  public:
    explicit FakeBacking(std::vector<std::byte> bytes) : m_bytes(std::move(bytes)) {}
    uint64_t size() const override { return m_bytes.size(); }
    const std::string& name() const override { return m_name; }
    bool read_only() const override { return true; }
    Result<void> read_at(std::span<std::byte> buffer, uint64_t offset) override {
        PV_TRY(check_range("read", offset, buffer.size()));
        std::memcpy(buffer.data(), m_bytes.data() + offset, buffer.size());
        ++reads;
        return {};
    }
    Result<void> write_at(std::span<const std::byte>, uint64_t) override {
        return fail(make_error("write fake", "read-only"));
    }
    Result<void> flush() override { return {}; }
    int reads = 0;

  private:
    std::vector<std::byte> m_bytes;
    std::string m_name = "fake-backing";
};

std::vector<std::byte> pattern(size_t length, uint32_t seed) {
    std::vector<std::byte> bytes(length);
    std::mt19937 random(seed);
    for (auto& b : bytes)
        b = static_cast<std::byte>(random());
    return bytes;
}

class Qcow2ImageTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char name[] = "/tmp/pv-qcow2-unit-XXXXXX";
        ASSERT_NE(::mkdtemp(name), nullptr);
        m_dir = name;
    }
    void TearDown() override { std::filesystem::remove_all(m_dir); }
    std::string path(const std::string& leaf) const { return m_dir + "/" + leaf; }

    std::unique_ptr<Qcow2Image> overlay(const std::vector<std::byte>& base,
                                        uint32_t cluster_bits = 16) {
        auto backing = std::make_unique<FakeBacking>(base);
        m_backing = backing.get();
        auto image = Qcow2Image::create_overlay(path("overlay.qcow2"), std::move(backing),
                                                path("base.raw"), Format::Raw, {cluster_bits});
        EXPECT_TRUE(image.has_value()) << image.error().message();
        return image ? std::move(*image) : nullptr;
    }

    std::string m_dir;
    FakeBacking* m_backing = nullptr;
};

std::vector<std::byte> read_all(BlockDevice& device, uint64_t offset, uint64_t length) {
    std::vector<std::byte> out(length);
    auto read = device.read_at(out, offset);
    EXPECT_TRUE(read.has_value()) << read.error().message();
    return out;
}

TEST_F(Qcow2ImageTest, UnallocatedReadsComeFromBacking) {
    const auto base = pattern(4 * kCluster + 1000, 1);
    auto image = overlay(base);
    ASSERT_TRUE(image);
    EXPECT_EQ(image->size(), base.size());
    EXPECT_EQ(image->cluster_size(), kCluster);
    EXPECT_EQ(image->backing_file(), std::optional<std::string>(path("base.raw")));
    EXPECT_EQ(read_all(*image, 0, base.size()), base);
    EXPECT_EQ(read_all(*image, 12345, 70000),
              std::vector<std::byte>(base.begin() + 12345, base.begin() + 12345 + 70000));
}

TEST_F(Qcow2ImageTest, PartialWriteCopiesRestOfClusterFromBacking) {
    const auto base = pattern(4 * kCluster, 2);
    auto image = overlay(base);
    ASSERT_TRUE(image);
    const auto data = pattern(1000, 3);
    ASSERT_TRUE(image->write_at(data, kCluster + 500).has_value());
    auto expected = base;
    std::copy(data.begin(), data.end(), expected.begin() + kCluster + 500);
    EXPECT_EQ(read_all(*image, 0, base.size()), expected);
    // Reading the written cluster again must not need the backing device.
    const int reads = m_backing->reads;
    EXPECT_EQ(read_all(*image, kCluster, kCluster),
              std::vector<std::byte>(expected.begin() + kCluster, expected.begin() + 2 * kCluster));
    EXPECT_EQ(m_backing->reads, reads);
}

TEST_F(Qcow2ImageTest, WriteSpanningClustersAndTables) {
    // 512-byte clusters: an L2 table maps 32 KiB, a refcount block 128 KiB,
    // so this write crosses many tables and refcount blocks.
    const auto base = pattern(1 << 20, 4);
    auto image = overlay(base, 9);
    ASSERT_TRUE(image);
    const auto data = pattern(300000, 5);
    ASSERT_TRUE(image->write_at(data, 777).has_value());
    auto expected = base;
    std::copy(data.begin(), data.end(), expected.begin() + 777);
    EXPECT_EQ(read_all(*image, 0, base.size()), expected);
    ASSERT_TRUE(image->flush().has_value());
    image.reset();
    auto reopened = Qcow2Image::open(path("overlay.qcow2"), Access::ReadOnly, Backing::Refuse);
    ASSERT_FALSE(reopened.has_value());
    EXPECT_NE(reopened.error().message().find("has a backing file"), std::string::npos);
}

TEST_F(Qcow2ImageTest, WriteZeroesMakesZeroClusters) {
    const auto base = pattern(8 * kCluster, 6);
    auto image = overlay(base);
    ASSERT_TRUE(image);
    ASSERT_TRUE(image->write_zeroes(kCluster - 100, 2 * kCluster + 200).has_value());
    auto expected = base;
    std::fill(expected.begin() + kCluster - 100, expected.begin() + 3 * kCluster + 100,
              std::byte{0});
    EXPECT_EQ(read_all(*image, 0, base.size()), expected);
    auto extents = image->map(0, base.size());
    ASSERT_TRUE(extents.has_value());
    // Cluster 0 and 3 were partially zeroed (allocated data), 1-2 are zero
    // clusters, 4-7 untouched.
    const std::vector<Extent> want = {{0, kCluster, ExtentKind::Data},
                                      {kCluster, 2 * kCluster, ExtentKind::Zero},
                                      {3 * kCluster, kCluster, ExtentKind::Data},
                                      {4 * kCluster, 4 * kCluster, ExtentKind::Backing}};
    ASSERT_EQ(extents->size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ((*extents)[i].offset, want[i].offset) << i;
        EXPECT_EQ((*extents)[i].length, want[i].length) << i;
        EXPECT_EQ((*extents)[i].kind, want[i].kind) << i;
    }
}

TEST_F(Qcow2ImageTest, ZeroedDataClusterCanBeWrittenAgain) {
    const auto base = pattern(4 * kCluster, 7);
    auto image = overlay(base);
    ASSERT_TRUE(image);
    ASSERT_TRUE(image->write_at(pattern(kCluster, 8), 0).has_value());
    ASSERT_TRUE(image->write_zeroes(0, kCluster).has_value());
    EXPECT_EQ(read_all(*image, 0, kCluster), std::vector<std::byte>(kCluster));
    const auto data = pattern(10, 9);
    ASSERT_TRUE(image->write_at(data, 100).has_value());
    std::vector<std::byte> expected(kCluster);
    std::copy(data.begin(), data.end(), expected.begin() + 100);
    // The rest of a written zero cluster stays zero: no copy from backing.
    EXPECT_EQ(read_all(*image, 0, kCluster), expected);
}

TEST_F(Qcow2ImageTest, MapMergesAdjacentExtentsAndClipsToRange) {
    const auto base = pattern(16 * kCluster, 10);
    auto image = overlay(base);
    ASSERT_TRUE(image);
    ASSERT_TRUE(image->write_at(pattern(3 * kCluster, 11), 2 * kCluster).has_value());
    ASSERT_TRUE(image->write_at(pattern(kCluster, 12), 5 * kCluster).has_value());
    auto extents = image->map(kCluster + 10, 6 * kCluster);
    ASSERT_TRUE(extents.has_value()) << extents.error().message();
    ASSERT_EQ(extents->size(), 3u);
    EXPECT_EQ((*extents)[0].offset, kCluster + 10);
    EXPECT_EQ((*extents)[0].kind, ExtentKind::Backing);
    EXPECT_EQ((*extents)[1].offset, 2 * kCluster);
    EXPECT_EQ((*extents)[1].length, 4 * kCluster);  // clusters 2-4 and 5 merged
    EXPECT_EQ((*extents)[1].kind, ExtentKind::Data);
    EXPECT_EQ((*extents)[2].offset, 6 * kCluster);
    EXPECT_EQ((*extents)[2].length, kCluster + 10);
    EXPECT_EQ((*extents)[2].kind, ExtentKind::Backing);
}

TEST_F(Qcow2ImageTest, RangesPastTheEndAreErrors) {
    auto image = overlay(pattern(kCluster, 13));
    ASSERT_TRUE(image);
    std::vector<std::byte> buffer(10);
    EXPECT_FALSE(image->read_at(buffer, kCluster - 5).has_value());
    EXPECT_FALSE(image->write_at(buffer, kCluster - 5).has_value());
    EXPECT_FALSE(image->map(0, kCluster + 1).has_value());
}

TEST_F(Qcow2ImageTest, CreateRefusesExistingFile) {
    auto image = overlay(pattern(kCluster, 14));
    ASSERT_TRUE(image);
    auto again = Qcow2Image::create_standalone(path("overlay.qcow2"), kCluster);
    EXPECT_FALSE(again.has_value());
}

TEST_F(Qcow2ImageTest, StandaloneReadsZeroesAndSurvivesReopen) {
    const uint64_t size = (10 << 20) + 512;
    auto created = Qcow2Image::create_standalone(path("standalone.qcow2"), size);
    ASSERT_TRUE(created.has_value()) << created.error().message();
    auto image = std::move(*created);
    EXPECT_EQ(image->backing(), nullptr);
    EXPECT_EQ(read_all(*image, size - 4096, 4096), std::vector<std::byte>(4096));
    std::vector<std::byte> model(size);
    std::mt19937_64 random(42);
    for (int i = 0; i < 200; ++i) {
        const uint64_t length = 1 + random() % 200000;
        const uint64_t offset = random() % (size - length);
        const auto data = pattern(length, static_cast<uint32_t>(i));
        ASSERT_TRUE(image->write_at(data, offset).has_value());
        std::copy(data.begin(), data.end(), model.begin() + offset);
        if (i % 50 == 0) {
            ASSERT_TRUE(image->flush().has_value());
        }
    }
    EXPECT_EQ(read_all(*image, 0, size), model);
    ASSERT_TRUE(image->flush().has_value());
    image.reset();
    auto reopened = Qcow2Image::open(path("standalone.qcow2"), Access::ReadWrite, Backing::Refuse);
    ASSERT_TRUE(reopened.has_value()) << reopened.error().message();
    EXPECT_EQ(read_all(**reopened, 0, size), model);
    // Writes after reopening go on from the end of the file.
    const auto data = pattern(3 * kCluster, 99);
    ASSERT_TRUE((*reopened)->write_at(data, 5).has_value());
    std::copy(data.begin(), data.end(), model.begin() + 5);
    EXPECT_EQ(read_all(**reopened, 0, size), model);
}

// Large aligned writes go through the O_DIRECT write-behind queue, small
// ones through the page cache; reads and small writes in between must see
// (and must not be overtaken by) the queued ones.
TEST_F(Qcow2ImageTest, LargeAndSmallWritesInterleaved) {
    const uint64_t size = 32 << 20;
    auto created = Qcow2Image::create_standalone(path("mixed.qcow2"), size);
    ASSERT_TRUE(created.has_value()) << created.error().message();
    auto image = std::move(*created);
    std::vector<std::byte> model(size);
    std::mt19937_64 random(7);
    for (int i = 0; i < 120; ++i) {
        const bool large = i % 2 == 0;
        const uint64_t length = large ? kCluster * (4 + random() % 60) : 1 + random() % 9000;
        uint64_t offset = random() % (size - length);
        if (large)
            offset -= offset % kCluster;
        const auto data = pattern(length, static_cast<uint32_t>(100 + i));
        ASSERT_TRUE(image->write_at(data, offset).has_value());
        std::copy(data.begin(), data.end(), model.begin() + offset);
        if (i % 7 == 0) {
            const uint64_t probe = random() % (size - 5000);
            ASSERT_EQ(read_all(*image, probe, 5000),
                      std::vector<std::byte>(model.begin() + probe, model.begin() + probe + 5000));
        }
    }
    ASSERT_TRUE(image->flush().has_value());
    EXPECT_EQ(read_all(*image, 0, size), model);
    image.reset();
    auto reopened = Qcow2Image::open(path("mixed.qcow2"), Access::ReadOnly, Backing::Refuse);
    ASSERT_TRUE(reopened.has_value()) << reopened.error().message();
    EXPECT_EQ(read_all(**reopened, 0, size), model);
}

TEST_F(Qcow2ImageTest, ReadOnlyImageRefusesWrites) {
    ASSERT_TRUE(Qcow2Image::create_standalone(path("ro.qcow2"), kCluster).has_value());
    auto image = Qcow2Image::open(path("ro.qcow2"), Access::ReadOnly, Backing::Refuse);
    ASSERT_TRUE(image.has_value()) << image.error().message();
    EXPECT_TRUE((*image)->read_only());
    const std::vector<std::byte> data(10);
    auto written = (*image)->write_at(data, 0);
    ASSERT_FALSE(written.has_value());
    EXPECT_NE(written.error().message().find("read-only"), std::string::npos);
}

TEST_F(Qcow2ImageTest, RawFileOpenedAsQcow2IsAnError) {
    const std::string raw = path("disk.raw");
    const int fd = ::open(raw.c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0);
    const auto bytes = pattern(kCluster, 15);
    ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    ::close(fd);
    auto image = Qcow2Image::open(raw, Access::ReadOnly, Backing::Refuse);
    ASSERT_FALSE(image.has_value());
    EXPECT_EQ(image.error().message(), raw + ": not a qcow2 image (bad magic)");
}

TEST_F(Qcow2ImageTest, OverlayReopensOverItsRecordedBackingFile) {
    const auto base = pattern(3 * kCluster, 16);
    {
        std::FILE* file = std::fopen(path("base.raw").c_str(), "wb");
        ASSERT_NE(file, nullptr);
        ASSERT_EQ(std::fwrite(base.data(), 1, base.size(), file), base.size());
        std::fclose(file);
    }
    auto image = overlay(base);
    ASSERT_TRUE(image);
    const auto data = pattern(5000, 17);
    ASSERT_TRUE(image->write_at(data, kCluster - 2500).has_value());
    ASSERT_TRUE(image->flush().has_value());
    image.reset();
    auto expected = base;
    std::copy(data.begin(), data.end(), expected.begin() + kCluster - 2500);
    auto reopened = Qcow2Image::open(path("overlay.qcow2"), Access::ReadWrite, Backing::Allow);
    ASSERT_TRUE(reopened.has_value()) << reopened.error().message();
    ASSERT_NE((*reopened)->backing(), nullptr);
    EXPECT_EQ((*reopened)->backing()->name(), path("base.raw"));
    EXPECT_EQ(read_all(**reopened, 0, base.size()), expected);
    auto extents = (*reopened)->map(0, base.size());
    ASSERT_TRUE(extents.has_value());
    ASSERT_EQ(extents->size(), 2u);
    EXPECT_EQ((*extents)[0].kind, ExtentKind::Data);
    EXPECT_EQ((*extents)[0].length, 2 * kCluster);
    EXPECT_EQ((*extents)[1].kind, ExtentKind::Backing);
}

TEST_F(Qcow2ImageTest, MissingFileIsAnError) {
    auto image = Qcow2Image::open(path("missing.qcow2"), Access::ReadOnly, Backing::Refuse);
    ASSERT_FALSE(image.has_value());
    EXPECT_NE(image.error().message().find("missing.qcow2"), std::string::npos);
}

}  // namespace
}  // namespace pv::img
