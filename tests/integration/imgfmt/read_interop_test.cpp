// Whole-disk reads through open_image equal `qemu-img convert -O raw` of the
// same image, byte for byte, for every format and variant QEMU 7.2 writes.

#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "imgfmt/image.hpp"
#include "qemu_tools.hpp"

namespace pv::img::interop {
namespace {

// Not a multiple of any cluster size, so the last cluster is partial.
constexpr uint64_t kDiskSize = (8 << 20) + 1536;

// A raw disk with pseudo-random (incompressible) regions, a constant region
// and holes, written by us so that no QEMU code decides its content.
void write_source_raw(const std::string& path) {
    std::vector<char> bytes(kDiskSize, 0);
    std::mt19937 random(20261125);
    for (const auto& [offset, length] : std::vector<std::pair<size_t, size_t>>{
             {0, 4096}, {1 << 20, 200000}, {(8 << 20) - 100, 1636}})
        for (size_t i = 0; i < length; ++i)
            bytes[offset + i] = static_cast<char>(random());
    std::fill(bytes.begin() + (5 << 20), bytes.begin() + (5 << 20) + 300000, 0x3c);
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// map() must cover the disk in order, and every Zero extent must really
// read as zeroes in QEMU's view (Data may hold zeroes; Zero may not lie).
void expect_map_is_sound(const std::string& image, const std::vector<std::byte>& qemu) {
    auto device = open_image(image, Access::ReadOnly, Backing::Allow);
    ASSERT_TRUE(device) << device.error().message();
    auto extents = (*device)->map(0, (*device)->size());
    ASSERT_TRUE(extents) << extents.error().message();
    uint64_t expected_offset = 0;
    uint64_t zero_bytes = 0;
    for (const Extent& extent : *extents) {
        ASSERT_EQ(extent.offset, expected_offset) << image;
        if (extent.kind == ExtentKind::Zero) {
            zero_bytes += extent.length;
            for (uint64_t i = extent.offset; i < extent.offset + extent.length; ++i)
                ASSERT_EQ(qemu[i], std::byte{0}) << image << ": map says Zero at " << i;
        }
        expected_offset += extent.length;
    }
    EXPECT_EQ(expected_offset, qemu.size());
    // The source disk is mostly holes: a map without Zero extents would be
    // useless to commit, and would make the check above vacuous.
    EXPECT_GT(zero_bytes, qemu.size() / 2) << image;
}

void expect_same_disk(const std::string& image, const std::string& scratch) {
    const std::vector<std::byte> ours = our_view(image, false);
    const std::vector<std::byte> qemu = qemu_raw_view(image, scratch);
    ASSERT_EQ(ours.size(), qemu.size()) << image;
    EXPECT_EQ(first_difference(ours, qemu), -1) << image << " differs from qemu-img convert";
    expect_map_is_sound(image, qemu);
}

class ReadInterop : public ::testing::Test {
  protected:
    void SetUp() override {
        source = dir.file("source.raw");
        write_source_raw(source);
    }
    std::string convert(const std::string& name, const std::string& options) {
        const std::string target = dir.file(name);
        must_run("qemu-img convert -f raw " + options + " " + quote(source) + " " + quote(target));
        return target;
    }
    TempDir dir;
    std::string source;
};

TEST_F(ReadInterop, Raw) {
    const std::string image = convert("disk.raw", "-O raw");
    EXPECT_EQ(detect_format(image).value(), Format::Raw);
    expect_same_disk(image, dir.file("oracle.raw"));
}

TEST_F(ReadInterop, Qcow2Version2) {
    const std::string image = convert("v2.qcow2", "-O qcow2 -o compat=0.10");
    EXPECT_EQ(inspect_image(image).value().version, 2u);
    expect_same_disk(image, dir.file("oracle.raw"));
}

TEST_F(ReadInterop, Qcow2Version3) {
    const std::string image = convert("v3.qcow2", "-O qcow2 -o compat=1.1");
    EXPECT_EQ(inspect_image(image).value().version, 3u);
    expect_same_disk(image, dir.file("oracle.raw"));
}

TEST_F(ReadInterop, Qcow2SmallClusters) {
    const std::string image = convert("small.qcow2", "-O qcow2 -o cluster_size=4096");
    EXPECT_EQ(inspect_image(image).value().cluster_size, 4096u);
    expect_same_disk(image, dir.file("oracle.raw"));
}

TEST_F(ReadInterop, Qcow2Compressed) {
    const std::string image = convert("compressed.qcow2", "-c -O qcow2");
    expect_same_disk(image, dir.file("oracle.raw"));
    // The image really holds compressed clusters: it is much smaller than
    // the plain conversion of the same data.
    const std::string plain = convert("plain.qcow2", "-O qcow2");
    EXPECT_LT(std::filesystem::file_size(image) + 200000, std::filesystem::file_size(plain));
}

TEST_F(ReadInterop, Qcow2CompressedSmallClusters) {
    // 512-byte clusters: the descriptor's offset and sector-count fields
    // have their widest and narrowest split (qcow2 spec, "Compressed
    // Clusters Descriptor"), and compressed data crosses cluster borders.
    const std::string image = convert("compressed-512.qcow2", "-c -O qcow2 -o cluster_size=512");
    expect_same_disk(image, dir.file("oracle.raw"));
}

TEST_F(ReadInterop, QcowVersion1Compressed) {
    // qemu-img 7.2 cannot convert this disk to a compressed qcow version 1
    // image, and qemu-io compresses only whole clusters (4 KiB here).
    const std::string image = dir.file("compressed.qcow");
    must_run("qemu-img create -q -f qcow " + quote(image) + " 8M");
    must_run(
        "qemu-io -f qcow -c 'write -c -P 0x5a 0 4k' -c 'write -c -P 0x11 1M 4k' -c "
        "'write -c -P 0x22 12k 4k' " +
        quote(image));
    expect_same_disk(image, dir.file("oracle.raw"));
    // Stored plainly, the three clusters alone would end at 20 KiB (header
    // and L1 in the first cluster, the L2 table in the second).
    EXPECT_LT(std::filesystem::file_size(image), 0x2000u + 3 * 4096);
}

TEST_F(ReadInterop, QcowVersion1) {
    const std::string image = convert("v1.qcow", "-O qcow");
    EXPECT_EQ(detect_format(image).value(), Format::Qcow);
    expect_same_disk(image, dir.file("oracle.raw"));
}

TEST_F(ReadInterop, Qcow2WrittenByQemuIoWithZeroAndDiscardedClusters) {
    // Version 3 zero clusters (L2 flag) over data that is still stored, and
    // discarded clusters, as qemu-io leaves them.
    const std::string image = convert("edited.qcow2", "-O qcow2");
    must_run(
        "qemu-io -f qcow2 -c 'write -P 0x5a 1M 64k' -c 'write -P 0x11 6M 512k' -c "
        "'write -z 6M 64k' -c 'write -z 6400k 4k' -c 'discard 6272k 64k' -c "
        "'write -P 0xa5 3145735 100000' " +
        quote(image));
    expect_same_disk(image, dir.file("oracle.raw"));
}

}  // namespace
}  // namespace pv::img::interop
