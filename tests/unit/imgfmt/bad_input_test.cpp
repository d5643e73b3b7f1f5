// Every bad input gives an error naming the file and the problem, from
// inspect_image and from open_image alike, never a crash or a wrong read.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "crafted_images.hpp"
#include "imgfmt/image.hpp"

namespace pv::img {
namespace {

using test::store_be;
using test::TempDir;
using test::write_file;

// Both entry points must refuse PATH with a message naming it and saying
// PROBLEM.
void expect_refused(const std::string& path, const std::string& problem) {
    auto info = inspect_image(path);
    ASSERT_FALSE(info) << path << " was accepted by inspect_image";
    EXPECT_NE(info.error().message().find(path), std::string::npos) << info.error().message();
    EXPECT_NE(info.error().message().find(problem), std::string::npos) << info.error().message();
    auto image = open_image(path, Access::ReadOnly, Backing::Allow);
    ASSERT_FALSE(image) << path << " was accepted by open_image";
    EXPECT_NE(image.error().message().find(path), std::string::npos) << image.error().message();
    EXPECT_NE(image.error().message().find(problem), std::string::npos) << image.error().message();
}

TEST(ImageBadInput, MissingFile) {
    TempDir dir;
    expect_refused(dir.file("nothing-here.qcow2"), "No such file or directory");
    auto format = detect_format(dir.file("nothing-here.qcow2"));
    ASSERT_FALSE(format);
    EXPECT_EQ(format.error().code, ENOENT);
}

TEST(ImageBadInput, EmptyFile) {
    TempDir dir;
    write_file(dir.file("empty"), {});
    expect_refused(dir.file("empty"), "empty");
}

TEST(ImageBadInput, Directory) {
    TempDir dir;
    ASSERT_EQ(::mkdir(dir.file("subdir").c_str(), 0755), 0);
    expect_refused(dir.file("subdir"), "is a directory");
}

TEST(ImageBadInput, TruncatedQcowHeader) {
    TempDir dir;
    auto bytes = test::make_qcow1();
    bytes.resize(30);
    write_file(dir.file("short.qcow"), bytes);
    expect_refused(dir.file("short.qcow"), "truncated qcow header");
}

TEST(ImageBadInput, TruncatedQcow2Header) {
    TempDir dir;
    auto bytes = test::make_qcow2(3);
    bytes.resize(60);
    write_file(dir.file("short.qcow2"), bytes);
    expect_refused(dir.file("short.qcow2"), "qcow2");
}

TEST(ImageBadInput, UnknownQcowVersionAfterTheMagic) {
    // "QFI\xfb" then version 4: QEMU's magic with a version nobody defined
    // must not silently become a raw disk.
    TempDir dir;
    auto bytes = test::make_qcow2(3);
    store_be(bytes, 4, 4, 4);
    write_file(dir.file("v4.qcow2"), bytes);
    expect_refused(dir.file("v4.qcow2"), "version 4");
}

TEST(ImageBadInput, BadMagicWhenQcow2IsNamedExplicitly) {
    TempDir dir;
    auto bytes = test::make_qcow2(3);
    bytes[3] = 0x00;  // "QFI\0": three bytes match, the fourth does not
    write_file(dir.file("partial.qcow2"), bytes);
    auto image =
        open_image(dir.file("partial.qcow2"), Format::Qcow2, Access::ReadOnly, Backing::Refuse);
    ASSERT_FALSE(image);
    EXPECT_NE(image.error().message().find("bad magic"), std::string::npos);
    EXPECT_NE(image.error().message().find(dir.file("partial.qcow2")), std::string::npos);
}

TEST(ImageBadInput, RawFileOpenedExplicitlyAsQcow2) {
    TempDir dir;
    write_file(dir.file("disk.raw"), std::vector<uint8_t>(1 << 20, 0x42));
    auto info = inspect_image(dir.file("disk.raw"), Format::Qcow2);
    ASSERT_FALSE(info);
    EXPECT_NE(info.error().message().find("not a qcow2 image"), std::string::npos);
    auto image = open_image(dir.file("disk.raw"), Format::Qcow2, Access::ReadOnly, Backing::Refuse);
    ASSERT_FALSE(image);
    EXPECT_NE(image.error().message().find(dir.file("disk.raw")), std::string::npos);
}

TEST(ImageBadInput, AbsurdQcowVirtualSize) {
    TempDir dir;
    auto bytes = test::make_qcow1();
    store_be(bytes, 24, UINT64_MAX - 7, 8);
    write_file(dir.file("huge.qcow"), bytes);
    expect_refused(dir.file("huge.qcow"), "absurdly large");
}

TEST(ImageBadInput, AbsurdQcow2VirtualSize) {
    TempDir dir;
    auto bytes = test::make_qcow2(3);
    store_be(bytes, 24, uint64_t{1} << 62, 8);
    write_file(dir.file("huge.qcow2"), bytes);
    expect_refused(dir.file("huge.qcow2"), "absurd");
}

TEST(ImageBadInput, QcowL1TablePastTheEndOfTheFile) {
    TempDir dir;
    auto bytes = test::make_qcow1();
    store_be(bytes, 40, 1 << 30, 8);
    write_file(dir.file("l1.qcow"), bytes);
    expect_refused(dir.file("l1.qcow"), "L1 table lies past the end of the file");
}

TEST(ImageBadInput, Qcow2L1TablePastTheEndOfTheFile) {
    TempDir dir;
    auto bytes = test::make_qcow2(3);
    store_be(bytes, 40, uint64_t{1} << 30, 8);
    write_file(dir.file("l1.qcow2"), bytes);
    expect_refused(dir.file("l1.qcow2"), "L1 table lies past the end of the file");
}

TEST(ImageBadInput, QcowClusterSizeOutOfRange) {
    TempDir dir;
    auto bytes = test::make_qcow1();
    bytes[32] = 40;
    write_file(dir.file("cluster.qcow"), bytes);
    expect_refused(dir.file("cluster.qcow"), "cluster size");
}

TEST(ImageBadInput, UnsupportedQcow2IncompatibleFeature) {
    // Bit 2, an external data file: the clusters are not in this file, so
    // reading this file alone would return wrong data.
    TempDir dir;
    auto bytes = test::make_qcow2(3);
    store_be(bytes, 72, 1 << 2, 8);
    write_file(dir.file("external.qcow2"), bytes);
    auto image = open_image(dir.file("external.qcow2"), Access::ReadOnly, Backing::Allow);
    ASSERT_FALSE(image);
    EXPECT_NE(image.error().message().find(dir.file("external.qcow2")), std::string::npos);
    EXPECT_NE(image.error().message().find("external data file"), std::string::npos)
        << image.error().message();
}

TEST(ImageBadInput, UnknownQcow2IncompatibleFeature) {
    TempDir dir;
    auto bytes = test::make_qcow2(3);
    store_be(bytes, 72, uint64_t{1} << 40, 8);
    write_file(dir.file("future.qcow2"), bytes);
    expect_refused(dir.file("future.qcow2"), "incompatible feature");
}

TEST(ImageBadInput, EncryptedQcowIsRefusedClearly) {
    TempDir dir;
    auto bytes = test::make_qcow1();
    store_be(bytes, 36, 1, 4);  // crypt_method AES
    write_file(dir.file("secret.qcow"), bytes);
    auto info = inspect_image(dir.file("secret.qcow"));
    ASSERT_TRUE(info);
    EXPECT_TRUE(info->encrypted);
    auto image = open_image(dir.file("secret.qcow"), Access::ReadOnly, Backing::Allow);
    ASSERT_FALSE(image);
    EXPECT_EQ(image.error().message(),
              dir.file("secret.qcow") + ": encrypted qcow images are not supported");
}

TEST(ImageBadInput, QcowBackingNameLongerThanQemuAllows) {
    TempDir dir;
    auto bytes = test::make_qcow1("base");
    store_be(bytes, 16, 5000, 4);
    write_file(dir.file("name.qcow"), bytes);
    expect_refused(dir.file("name.qcow"), "backing file name");
}

}  // namespace
}  // namespace pv::img
