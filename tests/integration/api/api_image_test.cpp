// The public image API (<patchvisor/image.hpp>, libpatchvisor-imgfmt.so) as
// an embedder sees it: only public headers, the shared library, and QEMU's
// tools (qemu-img, qemu-io) as the judges of what it wrote.

#include <gtest/gtest.h>

#include <cerrno>
#include <vector>

#include <patchvisor/image.hpp>

#include "tests/support/support.hpp"

namespace {

using patchvisor::Access;
using patchvisor::Backing;
using patchvisor::Image;
using patchvisor::ImageFormat;
using patchvisor::Locking;
using patchvisor::OpenOptions;
using pv::test::must;
using pv::test::quote;
using pv::test::TempDir;

constexpr uint64_t kDiskBytes = 4 << 20;

class ImageApi : public ::testing::Test {
  protected:
    TempDir dir;
    std::string base = dir.file("base.raw");

    void SetUp() override {
        if (!pv::test::have_program("qemu-img") || !pv::test::have_program("qemu-io"))
            GTEST_SKIP() << "qemu-img/qemu-io not installed (scripts/install-deps)";
        // A raw base: 0x11 in its first MiB, zeroes (a hole) after.
        must("qemu-img create -q -f raw " + quote(base) + " 4M");
        must("qemu-io -f raw -c 'write -P 0x11 0 1M' " + quote(base) + " >/dev/null");
    }

    // A qcow2 overlay over the base, made by qemu-img.
    std::string qemu_overlay() {
        const auto path = dir.file("qemu-overlay.qcow2");
        must("qemu-img create -q -f qcow2 -F raw -b " + quote(base) + " " + quote(path));
        must("qemu-io -f qcow2 -c 'write -P 0x22 1M 64k' " + quote(path) + " >/dev/null");
        return path;
    }
};

std::vector<std::byte> bytes(size_t count, uint8_t value) {
    return std::vector<std::byte>(count, std::byte{value});
}

TEST_F(ImageApi, OpensTheTopImageByMagicAndFollowsBackingOnlyWhenAllowed) {
    const auto overlay = qemu_overlay();
    auto refused = Image::open(overlay);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message().find("has a backing file"), std::string::npos)
        << refused.error().message();

    auto opened = Image::open(overlay, {.backing = Backing::Allow});
    ASSERT_TRUE(opened) << opened.error().message();
    EXPECT_EQ(opened->format(), ImageFormat::Qcow2);
    EXPECT_TRUE(opened->is_overlay());
    EXPECT_TRUE(opened->read_only());
    EXPECT_EQ(opened->size(), kDiskBytes);
    auto data = bytes(64 << 10, 0);
    ASSERT_TRUE(opened->read(0, data));
    EXPECT_EQ(data, bytes(64 << 10, 0x11)) << "the base shows through";
    ASSERT_TRUE(opened->read(1 << 20, data));
    EXPECT_EQ(data, bytes(64 << 10, 0x22)) << "the overlay's own write";
    EXPECT_FALSE(opened->write(0, data)) << "opened read-only";
}

TEST_F(ImageApi, AFormatTheCallerNamesIsTrustedOverTheMagic) {
    const auto overlay = qemu_overlay();
    auto info = patchvisor::inspect_image(overlay);
    ASSERT_TRUE(info) << info.error().message();
    EXPECT_EQ(info->format, ImageFormat::Qcow2);
    ASSERT_TRUE(info->backing_file);
    EXPECT_EQ(*info->backing_file, base);

    auto raw = Image::open(overlay, {.format = ImageFormat::Raw});
    ASSERT_TRUE(raw) << raw.error().message();
    EXPECT_EQ(raw->format(), ImageFormat::Raw);
    EXPECT_FALSE(raw->is_overlay());
    auto magic = bytes(4, 0);
    ASSERT_TRUE(raw->read(0, magic));
    EXPECT_EQ(magic, (std::vector<std::byte>{std::byte{'Q'}, std::byte{'F'}, std::byte{'I'},
                                             std::byte{0xfb}}));
    EXPECT_FALSE(Image::open(base, {.format = ImageFormat::Qcow2}))
        << "a raw file named qcow2 is refused, not guessed";
}

TEST_F(ImageApi, AnOpenImageIsLockedAgainstOtherWritersAndQemu) {
    auto held = Image::open(base);
    ASSERT_TRUE(held) << held.error().message();
    auto second = Image::open(base);
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code, EBUSY) << second.error().message();
    const auto qemu = pv::test::run("qemu-io -f raw -c 'read 0 512' " + quote(base));
    EXPECT_NE(qemu.exit_code, 0) << "qemu-io must not get the image: " << qemu.output;
    EXPECT_TRUE(Image::open(base, {.locking = Locking::None})) << "unless asked not to lock";
}

TEST_F(ImageApi, OverlayWritesLandInAQcow2FileQemuAgreesWith) {
    const auto overlay = dir.file("overlay.qcow2");
    const auto base_hash = pv::test::sha256_of_file(base);
    {
        auto opened = Image::open(base);
        ASSERT_TRUE(opened) << opened.error().message();
        auto made = Image::create_overlay(overlay, std::move(*opened));
        ASSERT_TRUE(made) << made.error().message();
        EXPECT_TRUE(made->is_overlay());
        EXPECT_FALSE(made->read_only());
        ASSERT_TRUE(made->write(512 << 10, bytes(1 << 20, 0x33)));
        ASSERT_TRUE(made->write_zeroes(3 << 20, 1 << 20));
        auto data = bytes(4096, 0);
        ASSERT_TRUE(made->read((1 << 20) + (512 << 10) - 4096, data));
        EXPECT_EQ(data, bytes(4096, 0x33));
        ASSERT_TRUE(made->flush());
        EXPECT_NE(pv::test::run("qemu-img check -q " + quote(overlay)).exit_code, 0)
            << "the open overlay is locked";
    }
    auto check = pv::test::run("qemu-img check " + quote(overlay));
    EXPECT_EQ(check.exit_code, 0) << check.output;
    auto info = pv::test::run("qemu-img info --output=json " + quote(overlay));
    EXPECT_NE(info.output.find("\"backing-filename-format\": \"raw\""), std::string::npos)
        << info.output;
    const auto expected = dir.file("expected.raw");
    must("cp " + quote(base) + " " + quote(expected));
    must("qemu-io -f raw -c 'write -P 0x33 512k 1M' -c 'write -z 3M 1M' " + quote(expected) +
         " >/dev/null");
    auto compare = pv::test::run("qemu-img compare " + quote(overlay) + " " + quote(expected));
    EXPECT_EQ(compare.exit_code, 0) << compare.output;
    EXPECT_EQ(pv::test::sha256_of_file(base), base_hash) << "the base is only read";
}

TEST_F(ImageApi, CommitToANewFileLeavesTheOriginalAlone) {
    const auto overlay = qemu_overlay();
    const auto base_hash = pv::test::sha256_of_file(base);
    const auto merged = dir.file("merged.qcow2");
    auto opened = Image::open(overlay, {.access = Access::ReadWrite, .backing = Backing::Allow});
    ASSERT_TRUE(opened) << opened.error().message();
    ASSERT_TRUE(opened->write(2 << 20, bytes(4096, 0x44)));
    auto committed = std::move(*opened).commit({.output = merged, .format = ImageFormat::Qcow2});
    ASSERT_TRUE(committed) << committed.error().message();
    EXPECT_EQ(committed->target, merged);
    EXPECT_EQ(committed->format, ImageFormat::Qcow2);
    EXPECT_FALSE(committed->backup);
    EXPECT_EQ(pv::test::sha256_of_file(base), base_hash);
    auto info = pv::test::run("qemu-img info " + quote(merged));
    EXPECT_EQ(info.output.find("backing file"), std::string::npos) << "standalone: " << info.output;
    EXPECT_EQ(pv::test::run("qemu-img check -q " + quote(merged)).exit_code, 0);
    // The merge of qemu's overlay, its write of 0x22 and ours of 0x44.
    auto read = pv::test::run(
        "qemu-io -f qcow2 -r -c 'read -P 0x11 0 1M' -c 'read -P 0x22 1M 64k'"
        " -c 'read -P 0x44 2M 4k' -c 'read -P 0 3M 1M' " +
        quote(merged));
    EXPECT_EQ(read.exit_code, 0) << read.output;
    EXPECT_EQ(read.output.find("Pattern verification failed"), std::string::npos) << read.output;
}

TEST_F(ImageApi, CommitReplacesTheOriginalAtomicallyAndKeepsABackup) {
    const auto base_hash = pv::test::sha256_of_file(base);
    const auto overlay = dir.file("overlay.qcow2");
    auto opened = Image::open(base);
    ASSERT_TRUE(opened);
    auto made = Image::create_overlay(overlay, std::move(*opened));
    ASSERT_TRUE(made) << made.error().message();
    ASSERT_TRUE(made->write(0, bytes(64 << 10, 0x55)));
    uint64_t last_done = 0;
    auto committed = std::move(*made).commit(
        {.keep_backup = true, .progress = [&](uint64_t done, uint64_t) { last_done = done; }});
    ASSERT_TRUE(committed) << committed.error().message();
    EXPECT_EQ(committed->target, base);
    EXPECT_EQ(committed->format, ImageFormat::Raw) << "raw stays raw";
    ASSERT_TRUE(committed->backup);
    EXPECT_EQ(pv::test::sha256_of_file(*committed->backup), base_hash);
    EXPECT_GT(last_done, 0u);
    auto read = pv::test::run(
        "qemu-io -f raw -r -c 'read -P 0x55 0 64k' -c 'read -P 0x11 64k 960k' "
        "-c 'read -P 0 1M 3M' " +
        quote(base));
    EXPECT_EQ(read.exit_code, 0) << read.output;
    EXPECT_EQ(read.output.find("Pattern verification failed"), std::string::npos) << read.output;
}

TEST_F(ImageApi, CommitNeedsAnOverlay) {
    auto plain = Image::open(base);
    ASSERT_TRUE(plain);
    auto committed = std::move(*plain).commit({.output = dir.file("never.raw")});
    ASSERT_FALSE(committed);
    EXPECT_NE(committed.error().message().find("not an overlay"), std::string::npos)
        << committed.error().message();
    EXPECT_FALSE(patchvisor::parse_format("vmdk"));
    EXPECT_EQ(patchvisor::format_name(ImageFormat::Qcow2), "qcow2");
}

}  // namespace
