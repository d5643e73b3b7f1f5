// Format names, detection by magic and header inspection on hand-made files.

#include <gtest/gtest.h>

#include "crafted_images.hpp"
#include "imgfmt/image.hpp"

namespace pv::img {
namespace {

using test::kCraftedSize;
using test::TempDir;
using test::write_file;

TEST(ImageParseFormat, AcceptsTheThreeNamesAndRoundTrips) {
    for (const Format format : {Format::Raw, Format::Qcow, Format::Qcow2}) {
        auto parsed = parse_format(format_name(format));
        ASSERT_TRUE(parsed);
        EXPECT_EQ(*parsed, format);
    }
    EXPECT_EQ(format_name(Format::Qcow2), "qcow2");
}

TEST(ImageParseFormat, RejectsUnknownNamesSayingWhichAreKnown) {
    for (const char* name : {"vmdk", "QCOW2", "", "qcow3"}) {
        auto parsed = parse_format(name);
        ASSERT_FALSE(parsed) << name;
        EXPECT_NE(parsed.error().message().find("expected raw, qcow or qcow2"), std::string::npos);
    }
}

TEST(ImageDetectFormat, ReadsTheMagicAndVersion) {
    TempDir dir;
    write_file(dir.file("v1"), test::make_qcow1());
    write_file(dir.file("v2"), test::make_qcow2(2));
    write_file(dir.file("v3"), test::make_qcow2(3));
    write_file(dir.file("raw"), std::vector<uint8_t>(4096, 0xee));
    EXPECT_EQ(detect_format(dir.file("v1")).value(), Format::Qcow);
    EXPECT_EQ(detect_format(dir.file("v2")).value(), Format::Qcow2);
    EXPECT_EQ(detect_format(dir.file("v3")).value(), Format::Qcow2);
    EXPECT_EQ(detect_format(dir.file("raw")).value(), Format::Raw);
}

TEST(ImageDetectFormat, PartialMagicAndVersionZeroAreRaw) {
    TempDir dir;
    auto almost = test::make_qcow2(3);
    almost[3] = 0xfa;  // "QFI\xfa"
    write_file(dir.file("almost"), almost);
    auto version_zero = test::make_qcow2(3);
    test::store_be(version_zero, 4, 0, 4);
    write_file(dir.file("zero"), version_zero);
    write_file(dir.file("short"), {'Q', 'F', 'I', 0xfb, 0, 0});
    EXPECT_EQ(detect_format(dir.file("almost")).value(), Format::Raw);
    EXPECT_EQ(detect_format(dir.file("zero")).value(), Format::Raw);
    EXPECT_EQ(detect_format(dir.file("short")).value(), Format::Raw);
}

TEST(ImageInspect, RawReportsFileSizeAsVirtualSize) {
    TempDir dir;
    write_file(dir.file("raw"), std::vector<uint8_t>(12345, 1));
    auto info = inspect_image(dir.file("raw"));
    ASSERT_TRUE(info) << info.error().message();
    EXPECT_EQ(info->format, Format::Raw);
    EXPECT_EQ(info->virtual_size, 12345u);
    EXPECT_EQ(info->file_size, 12345u);
    EXPECT_GE(info->allocated_bytes, 12345u);
    EXPECT_EQ(info->cluster_size, 0u);
    EXPECT_FALSE(info->backing_file);
}

TEST(ImageInspect, QcowVersion1HeaderFields) {
    TempDir dir;
    write_file(dir.file("v1"), test::make_qcow1("base.qcow"));
    auto info = inspect_image(dir.file("v1"));
    ASSERT_TRUE(info) << info.error().message();
    EXPECT_EQ(info->format, Format::Qcow);
    EXPECT_EQ(info->version, 1u);
    EXPECT_EQ(info->virtual_size, kCraftedSize);
    EXPECT_EQ(info->cluster_size, 4096u);
    EXPECT_EQ(info->file_size, 8192u);
    EXPECT_FALSE(info->encrypted);
    ASSERT_TRUE(info->backing_file);
    EXPECT_EQ(*info->backing_file, "base.qcow");
}

TEST(ImageInspect, Qcow2Version2And3HeaderFields) {
    TempDir dir;
    for (const uint32_t version : {2u, 3u}) {
        const std::string path = dir.file("v" + std::to_string(version));
        write_file(path, test::make_qcow2(version));
        auto info = inspect_image(path);
        ASSERT_TRUE(info) << info.error().message();
        EXPECT_EQ(info->format, Format::Qcow2);
        EXPECT_EQ(info->version, version);
        EXPECT_EQ(info->virtual_size, kCraftedSize);
        EXPECT_EQ(info->cluster_size, 65536u);
        EXPECT_EQ(info->file_size, 4u * 65536);
        EXPECT_FALSE(info->backing_file);
    }
}

TEST(ImageInspect, ExplicitRawFormatTreatsAQcow2FileAsBytes) {
    TempDir dir;
    write_file(dir.file("v3"), test::make_qcow2(3));
    auto info = inspect_image(dir.file("v3"), Format::Raw);
    ASSERT_TRUE(info);
    EXPECT_EQ(info->format, Format::Raw);
    EXPECT_EQ(info->virtual_size, 4u * 65536);
}

}  // namespace
}  // namespace pv::img
