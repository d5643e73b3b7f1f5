// Header parsing and serialization (qcow2 spec, "Header"): a round trip,
// and a clean error naming the file for every kind of bad input.

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "imgfmt/qcow2/endian.hpp"
#include "imgfmt/qcow2/header.hpp"

namespace pv::img::qcow2 {
namespace {

constexpr uint64_t kCluster = 65536;
const std::string kPath = "/x/a.qcow2";

// A valid header for a 1 GiB image: refcount table in cluster 1, L1 table
// in cluster 3, in a file of 4 clusters.
Header valid_header() {
    Header h;
    h.size = 1ull << 30;
    h.l1_size = 2;
    h.refcount_table_offset = kCluster;
    h.refcount_table_clusters = 1;
    h.l1_table_offset = 3 * kCluster;
    return h;
}

std::vector<uint8_t> valid_bytes() {
    return serialize_header(valid_header()).value();
}

std::string parse_error(const std::vector<uint8_t>& bytes, uint64_t file_size = 4 * kCluster) {
    auto parsed = parse_header(bytes, file_size, kPath);
    EXPECT_FALSE(parsed.has_value());
    return parsed ? std::string("(parsed)") : parsed.error().message();
}

TEST(Qcow2Header, RoundTripKeepsEveryField) {
    Header h = valid_header();
    h.backing_file = "/images/base.raw";
    h.backing_format = "raw";
    h.compatible_features = 0;
    const auto bytes = serialize_header(h);
    ASSERT_TRUE(bytes.has_value());
    ASSERT_EQ(bytes->size(), kCluster);
    const auto parsed = parse_header(*bytes, 4 * kCluster, kPath);
    ASSERT_TRUE(parsed.has_value()) << parsed.error().message();
    EXPECT_EQ(parsed->version, 3u);
    EXPECT_EQ(parsed->cluster_bits, 16u);
    EXPECT_EQ(parsed->size, h.size);
    EXPECT_EQ(parsed->l1_size, 2u);
    EXPECT_EQ(parsed->l1_table_offset, 3 * kCluster);
    EXPECT_EQ(parsed->refcount_table_offset, kCluster);
    EXPECT_EQ(parsed->refcount_table_clusters, 1u);
    EXPECT_EQ(parsed->refcount_order, 4u);
    EXPECT_EQ(parsed->backing_file, std::optional<std::string>("/images/base.raw"));
    EXPECT_EQ(parsed->backing_format, std::optional<std::string>("raw"));
}

TEST(Qcow2Header, WithoutBackingHasNoBackingFields) {
    const auto parsed = parse_header(valid_bytes(), 4 * kCluster, kPath);
    ASSERT_TRUE(parsed.has_value()) << parsed.error().message();
    EXPECT_FALSE(parsed->backing_file.has_value());
    EXPECT_FALSE(parsed->backing_format.has_value());
}

TEST(Qcow2Header, BadMagic) {
    auto bytes = valid_bytes();
    bytes[0] = 'X';
    EXPECT_EQ(parse_error(bytes), "/x/a.qcow2: not a qcow2 image (bad magic)");
}

TEST(Qcow2Header, TruncatedHeader) {
    auto bytes = valid_bytes();
    bytes.resize(40);
    EXPECT_NE(parse_error(bytes, 40).find("truncated qcow2 header"), std::string::npos);
    bytes.resize(4);
    EXPECT_NE(parse_error(bytes, 4).find("not a qcow2 image"), std::string::npos);
}

TEST(Qcow2Header, L1TablePastEndOfFile) {
    EXPECT_EQ(parse_error(valid_bytes(), 3 * kCluster + 8),
              "/x/a.qcow2: L1 table lies past the end of the file");
}

TEST(Qcow2Header, RefcountTablePastEndOfFile) {
    auto bytes = valid_bytes();
    store_be64(&bytes[48], 8 * kCluster);
    EXPECT_NE(parse_error(bytes).find("refcount table lies past the end"), std::string::npos);
}

TEST(Qcow2Header, AbsurdVirtualSize) {
    auto bytes = valid_bytes();
    store_be64(&bytes[24], 1ull << 62);
    EXPECT_NE(parse_error(bytes).find("virtual size"), std::string::npos);
}

TEST(Qcow2Header, AbsurdL1Size) {
    auto bytes = valid_bytes();
    store_be32(&bytes[36], 0xffffffffu);
    EXPECT_NE(parse_error(bytes).find("L1 table size 4294967295 is absurd"), std::string::npos);
}

TEST(Qcow2Header, L1SizeTooSmallForVirtualSize) {
    auto bytes = valid_bytes();
    store_be64(&bytes[24], 100ull << 30);  // needs 200 L1 entries, has 2
    EXPECT_NE(parse_error(bytes).find("too small for the virtual size"), std::string::npos);
}

TEST(Qcow2Header, RefcountTableMisaligned) {
    auto bytes = valid_bytes();
    store_be64(&bytes[48], kCluster + 512);
    EXPECT_NE(parse_error(bytes).find("refcount table offset is not cluster aligned"),
              std::string::npos);
}

TEST(Qcow2Header, L1TableMisaligned) {
    auto bytes = valid_bytes();
    store_be64(&bytes[40], 3 * kCluster - 8);
    EXPECT_NE(parse_error(bytes).find("L1 table offset is not cluster aligned"), std::string::npos);
}

TEST(Qcow2Header, UnknownIncompatibleFeatureBit) {
    auto bytes = valid_bytes();
    store_be64(&bytes[72], 1ull << 20);
    EXPECT_NE(parse_error(bytes).find("unknown incompatible feature bits 0x100000"),
              std::string::npos);
}

TEST(Qcow2Header, ClusterBitsOutOfRange) {
    auto bytes = valid_bytes();
    store_be32(&bytes[20], 30);
    EXPECT_NE(parse_error(bytes).find("cluster_bits 30 is out of range"), std::string::npos);
}

TEST(Qcow2Header, UnsupportedVersion) {
    auto bytes = valid_bytes();
    store_be32(&bytes[4], 4);
    EXPECT_NE(parse_error(bytes).find("unsupported qcow2 version 4"), std::string::npos);
}

TEST(Qcow2Header, RefcountOrderInvalid) {
    auto bytes = valid_bytes();
    store_be32(&bytes[96], 7);
    EXPECT_NE(parse_error(bytes).find("refcount_order 7"), std::string::npos);
}

TEST(Qcow2Header, BackingNameTooLong) {
    Header h = valid_header();
    h.backing_file = "/b";
    auto bytes = serialize_header(h).value();
    store_be32(&bytes[16], 2000);
    EXPECT_NE(parse_error(bytes).find("backing file name length 2000 is invalid"),
              std::string::npos);
    EXPECT_FALSE(serialize_header([] {
                     Header big = valid_header();
                     big.backing_file = std::string(1024, 'a');
                     return big;
                 }())
                     .has_value());
}

TEST(Qcow2Header, BackingNameOutsideHeaderCluster) {
    Header h = valid_header();
    h.backing_file = "/b";
    auto bytes = serialize_header(h).value();
    store_be64(&bytes[8], kCluster - 1);
    EXPECT_NE(parse_error(bytes).find("outside the header cluster"), std::string::npos);
}

TEST(Qcow2Header, ExtensionRunsPastHeader) {
    Header h = valid_header();
    h.backing_format = "raw";
    auto bytes = serialize_header(h).value();
    store_be32(&bytes[104 + 4], 0x7fffffff);  // length of the backing-format extension
    EXPECT_NE(parse_error(bytes).find("header extension runs past the header"), std::string::npos);
}

TEST(Qcow2Header, Version2IsAccepted) {
    auto bytes = valid_bytes();
    store_be32(&bytes[4], 2);
    // Version 2 ends at byte 72; what follows must not be read as fields.
    const auto parsed = parse_header(bytes, 4 * kCluster, kPath);
    ASSERT_TRUE(parsed.has_value()) << parsed.error().message();
    EXPECT_EQ(parsed->version, 2u);
    EXPECT_EQ(parsed->incompatible_features, 0u);
    EXPECT_EQ(parsed->refcount_order, 4u);
    EXPECT_EQ(parsed->header_length, 72u);
}

class TempFile {
  public:
    TempFile() {
        char name[] = "/tmp/pv-qcow2-header-XXXXXX";
        m_fd = ::mkstemp(name);
        m_path = name;
    }
    ~TempFile() {
        ::close(m_fd);
        ::unlink(m_path.c_str());
    }
    void write(const std::vector<uint8_t>& bytes) {
        ASSERT_EQ(::pwrite(m_fd, bytes.data(), bytes.size(), 0),
                  static_cast<ssize_t>(bytes.size()));
    }
    int fd() const { return m_fd; }
    const std::string& path() const { return m_path; }

  private:
    int m_fd = -1;
    std::string m_path;
};

TEST(Qcow2Header, ReadHeaderFromFile) {
    TempFile file;
    auto bytes = valid_bytes();
    bytes.resize(4 * kCluster);
    file.write(bytes);
    const auto parsed = read_header(file.fd(), file.path());
    ASSERT_TRUE(parsed.has_value()) << parsed.error().message();
    EXPECT_EQ(parsed->size, 1ull << 30);
}

TEST(Qcow2Header, ReadHeaderOfTruncatedFile) {
    TempFile file;
    auto bytes = valid_bytes();
    bytes.resize(kCluster + 100);  // the L1 and refcount tables are cut off
    file.write(bytes);
    const auto parsed = read_header(file.fd(), file.path());
    ASSERT_FALSE(parsed.has_value());
    EXPECT_EQ(parsed.error().message().rfind(file.path() + ": ", 0), 0u);
    EXPECT_NE(parsed.error().message().find("past the end of the file"), std::string::npos);
}

TEST(Qcow2Header, ReadHeaderOfRawFile) {
    TempFile file;
    file.write(std::vector<uint8_t>(8192, 0x5a));
    const auto parsed = read_header(file.fd(), file.path());
    ASSERT_FALSE(parsed.has_value());
    EXPECT_EQ(parsed.error().message(), file.path() + ": not a qcow2 image (bad magic)");
}

TEST(Qcow2Header, ReadHeaderOfEmptyFile) {
    TempFile file;
    const auto parsed = read_header(file.fd(), file.path());
    ASSERT_FALSE(parsed.has_value());
    EXPECT_NE(parsed.error().message().find("not a qcow2 image"), std::string::npos);
}

}  // namespace
}  // namespace pv::img::qcow2
